"""The one-stop services' routes (catalogue, forms, applications, e-licences, eligibility
policies), kept here so that `app.py` takes them in one line."""

from __future__ import annotations

from starlette.routing import Route

from cityops.api import applications, benefits, licences, services

POST = ["POST"]

ROUTES = [
    Route("/api/v1/services", services.list_services),
    Route("/api/v1/services/{code}", services.get_service),
    Route("/api/v1/services/{code}/form", services.service_form),
    Route("/api/v1/bundles/{code}", services.get_bundle),
    Route("/api/v1/bundles/{code}/form", services.bundle_form),
    Route("/api/v1/applications", applications.post_application, methods=POST),
    Route("/api/v1/applications", applications.list_applications),
    Route("/api/v1/applications/{application_id}", applications.get_application),
    Route("/api/v1/applications/{application_id}/actions/{action}",
          applications.application_action, methods=POST),
    Route("/api/v1/submissions", applications.list_submissions),
    Route("/api/v1/submissions/{submission_id}", applications.get_submission),
    Route("/api/v1/licences", licences.post_licence, methods=POST),
    Route("/api/v1/licences", licences.list_licences),
    Route("/api/v1/licences/{licence_id}", licences.get_licence),
    Route("/api/v1/licences/{licence_id}/revoke", licences.revoke_licence, methods=POST),
    Route("/api/v1/policies", benefits.list_policies),
    Route("/api/v1/policies/{policy_id}", benefits.get_policy),
    Route("/api/v1/policies/{policy_id}/run", benefits.run_policy, methods=POST),
    Route("/api/v1/benefits", benefits.list_benefits),
]
