"""A real SOAP client for the tests: Python zeep reads the served WSDL and calls one
operation.

    python soap_client.py WSDL_URL USER PASSWORD BINDING OPERATION ARGS_JSON [SERVICE]

Prints {"ok": result} or {"fault": {code, message, detail}} as JSON.
"""
import json
import sys

from lxml import etree
from requests import Session
from requests.auth import HTTPBasicAuth
from zeep import Client, Settings
from zeep.exceptions import Fault
from zeep.helpers import serialize_object
from zeep.transports import Transport


def main():
    wsdl, user, password, binding, operation, args = sys.argv[1:7]
    service_name = sys.argv[7] if len(sys.argv) > 7 else "SalesService"
    session = Session()
    if user != "-":
        session.auth = HTTPBasicAuth(user, password)
    client = Client(wsdl, transport=Transport(session=session), settings=Settings(strict=True))
    service = client.bind(service_name, binding)
    try:
        result = getattr(service, operation)(**json.loads(args))
        print(json.dumps({"ok": serialize_object(result, dict)}, default=str))
    except Fault as f:
        detail = etree.tostring(f.detail).decode() if f.detail is not None else None
        print(json.dumps({"fault": {"code": f.code, "message": f.message, "detail": detail}}))


if __name__ == "__main__":
    main()
