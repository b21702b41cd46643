"""One-stop government services (SPEC section 5): the service catalogue, applications, "one
thing, done once" bundles with a merged form, the two exemptions from submission (e-licences
and shared data), and eligibility policies that grant benefits without an application.
Pure rules: no I/O; the serve side stores and notifies."""
