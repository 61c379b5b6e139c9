"""The library's own tests: `live_tasks` in a project of its own (settings.py, urls.py, asgi.py
here), with kinds that exist only for tests (testapp/), and nothing of the demo site.

Run apart from the site's tests, with their own settings (`make test` does both):

    pytest tests/library --ds=tests.library.settings --confcutdir=tests/library

Every import inside is relative, so the folder runs under any package name: the slow test of
tests/test_package.py copies it beside a fresh virtualenv that has only the built wheel and runs it
there, against the installed package.
"""
