"""Calls GetTicket through suds with its default transport for a user name and password
(HttpAuthenticated: it sends Basic credentials only after a 401 challenge), as an ERP that
uses suds does. Prints one JSON line: {"ticket": ..., "licenses": n} or {"error": ...}.

Usage: soap_suds.py WSDL_URL USER PASSWORD TICKET
"""
import json
import sys

from suds.client import Client


def main():
    wsdl, user, password, ticket = sys.argv[1:5]
    try:
        client = Client(wsdl, username=user, password=password, cache=None)
        answer = client.service.GetTicket(ticket)
        licenses = getattr(answer, "License", []) or []
        print(json.dumps({"ticket": str(answer.Ticket), "licenses": len(licenses),
                          "transport": type(client.options.transport).__name__}))
    except Exception as e:  # the test prints what went wrong
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))


main()
