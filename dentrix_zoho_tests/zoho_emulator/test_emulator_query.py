"""Search and COQL contract.

Zoho's documentation: https://www.zoho.com/crm/developer/docs/api/v8/search-records.html, https://www.zoho.com/crm/developer/docs/api/v8/COQL-Overview.html
"""

from __future__ import annotations

import pytest

from .conftest import Zoho


@pytest.fixture
def people(zoho: Zoho) -> Zoho:
    zoho.insert_ok("Contacts",
                   {"Last_Name": "Boyle", "First_Name": "Pat", "Email": "pat@example.com", "Phone": "+1 555-0100",
                    "Date_of_Birth": "1980-05-01"},
                   {"Last_Name": "Burns", "First_Name": "Monty", "Email": "monty@example.com",
                    "Mobile": "(555) 0199", "Date_of_Birth": "1930-01-01"},
                   {"Last_Name": "Burns, Jr", "First_Name": "Larry", "Date_of_Birth": "1960-07-07"})
    return zoho


def _names(response) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(r["Last_Name"] for r in response.json()["data"])


def test_search_by_criteria(people: Zoho) -> None:
    found = people.get("/Contacts/search", params={"criteria": "(Last_Name:starts_with:burns)"})
    assert found.status_code == 200 and _names(found) == ["Burns", "Burns, Jr"]
    both = people.get("/Contacts/search",
                      params={"criteria": "((Last_Name:equals:Burns\\, Jr)or(First_Name:equals:pat))"})
    assert _names(both) == ["Boyle", "Burns, Jr"]
    dated = people.get("/Contacts/search", params={"criteria": "(Date_of_Birth:between:1950-01-01,1990-01-01)"})
    assert _names(dated) == ["Boyle", "Burns, Jr"]
    none = people.get("/Contacts/search", params={"criteria": "(Last_Name:equals:Nobody)"})
    assert none.status_code == 204


def test_search_by_email_phone_word(people: Zoho) -> None:
    assert _names(people.get("/Contacts/search", params={"email": "PAT@example.com"})) == ["Boyle"]
    assert _names(people.get("/Contacts/search", params={"phone": "5550199"})) == ["Burns"]
    assert _names(people.get("/Contacts/search", params={"word": "jr"})) == ["Burns, Jr"]


def test_search_errors(people: Zoho) -> None:
    missing = people.get("/Contacts/search")
    assert missing.status_code == 400 and missing.json()["code"] == "REQUIRED_PARAM_MISSING"
    bad_op = people.get("/Contacts/search", params={"criteria": "(Last_Name:sounds_like:x)"})
    assert bad_op.status_code == 400 and bad_op.json()["code"] == "INVALID_QUERY"
    eleven = "(" + "and".join(["(Last_Name:equals:x)"] * 11) + ")"
    assert people.get("/Contacts/search", params={"criteria": eleven}).json()["code"] == "LIMIT_EXCEEDED"


def test_coql_select_where_order_limit(people: Zoho) -> None:
    response = people.post("/coql", json={"select_query": (
        "select Last_Name, First_Name, Owner from Contacts where Last_Name like 'Burns%' "
        "order by First_Name desc limit 5")})
    assert response.status_code == 200
    body = response.json()
    assert [r["First_Name"] for r in body["data"]] == ["Monty", "Larry"]
    assert set(body["data"][0]) == {"Last_Name", "First_Name", "Owner", "id"}
    assert set(body["data"][0]["Owner"]) == {"id"}
    assert body["info"] == {"count": 2, "more_records": False}
    paged = people.post("/coql", json={"select_query": "select Last_Name from Contacts where id is not null "
                                                       "order by Last_Name limit 1, 1"}).json()
    assert [r["Last_Name"] for r in paged["data"]] == ["Burns"] and paged["info"]["more_records"] is True
    older = people.post("/coql", json={"select_query": "select Last_Name from Contacts where "
                                                       "(Date_of_Birth < '1970-01-01' and Email is null) "
                                                       "or Last_Name in ('Boyle')"}).json()
    assert sorted(r["Last_Name"] for r in older["data"]) == ["Boyle", "Burns, Jr"]
    count = people.post("/coql", json={"select_query": "select COUNT(id) from Contacts where id is not null"})
    assert count.json()["data"] == [{"COUNT(id)": 3}]


def test_coql_errors(people: Zoho) -> None:
    no_where = people.post("/coql", json={"select_query": "select Last_Name from Contacts"})
    assert no_where.status_code == 400 and no_where.json()["code"] == "SYNTAX_ERROR"
    bad_column = people.post("/coql", json={"select_query": "select Nope from Contacts where id is not null"})
    assert bad_column.json()["code"] == "INVALID_QUERY"
    too_big = people.post("/coql", json={"select_query": "select Last_Name from Contacts where id is not null "
                                                         "limit 2001"})
    assert too_big.json()["code"] == "LIMIT_EXCEEDED"
    empty = people.post("/coql", json={"select_query": "select Last_Name from Contacts where Last_Name = 'Zed'"})
    assert empty.status_code == 204
    assert people.post("/coql", json={}).json()["code"] == "REQUIRED_PARAM_MISSING"


def test_search_reaches_only_2000_results(zoho: Zoho) -> None:
    for start in range(0, 2001, 100):
        zoho.insert_ok("Leads", *({"Last_Name": f"Same {i}"} for i in range(start, min(start + 100, 2001))))
    last_page = zoho.get("/Leads/search", params={"word": "same", "page": 10, "per_page": 200})
    assert last_page.status_code == 200 and len(last_page.json()["data"]) == 200
    beyond = zoho.get("/Leads/search", params={"word": "same", "page": 11, "per_page": 200})
    assert beyond.status_code == 400 and beyond.json()["code"] == "LIMIT_REACHED"
