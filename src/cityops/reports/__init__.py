"""PDF reports (issue 16 item 6): one area's figures for one period, monthly by default.

    model.py    the report as stored (a record of kind `report`; the PDF beside it on disk)
    builder.py  gathers the figures: evaluation, incident counts, vital signs, sorting, care
    render.py   lays them out with ReportLab, charts included (blocking: run in a thread)
    service.py  makes, keeps and lists reports; a bounded number rendered at once; the
                monthly schedule, on the node's clock
    routes.py   POST/GET /api/v1/reports, /api/v1/reports/{id}, /api/v1/reports/{id}.pdf
"""
