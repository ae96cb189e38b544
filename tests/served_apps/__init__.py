"""Apps the test servers serve, by import string (``tests.served_apps.basic:wsgi_app``)."""
