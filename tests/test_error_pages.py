"""With DEBUG off, as in production, error pages tell people what happened and nothing
about the code behind it."""

import pytest


def test_a_missing_page_answers_404_without_code_details(owner_client):
    response = owner_client.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "Not found" in html
    assert "urlpatterns" not in html and "Traceback" not in html


@pytest.mark.urls("tests.failing_urls")
def test_a_failure_answers_500_without_the_traceback(owner_client):
    owner_client.raise_request_exception = False
    response = owner_client.get("/fail/")
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert "secret detail" not in html and "Traceback" not in html
