// Licentia's Sales service from C++ with gSOAP (the README's "SOAP clients" shows this): the
// code is generated from the served WSDL by wsdl2h and soapcpp2; an order, its ticket, and a
// refused order's fault. Prints what it got as JSON.
// Environment: LICENTIA_URL (the server), LICENTIA_USER, LICENTIA_PASSWORD, ORDER_ID.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "SalesSoap11.nsmap"
#include "soapSalesSoap11Proxy.h"

static std::string env(const char *name) {
  const char *v = std::getenv(name);
  return v ? v : "";
}

// A JSON string (the values here are ids and messages: quotes, backslashes, controls).
static std::string quoted(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

int main() {
  const std::string endpoint = env("LICENTIA_URL") + "/soap/Sales";
  const std::string user = env("LICENTIA_USER"), password = env("LICENTIA_PASSWORD");
  // gSOAP speaks SOAP 1.2 by default, through either port of the WSDL (the server takes
  // both versions); UTF-8 strings in and out.
  SalesSoap11Proxy sales(endpoint.c_str(), SOAP_C_UTFSTRING);
  // HTTP Basic: gSOAP forgets the credentials after each call, so they are set before each.
  auto basic = [&] {
    sales.soap->userid = user.c_str();
    sales.soap->passwd = password.c_str();
  };

  ns1__Customer customer;
  customer.ExternalId = "GSOAP-1";
  std::string name = "M\xc3\xbcller GmbH", email = "einkauf@example.com", locale = "de";
  customer.Name = &name;
  customer.Email = &email;
  customer.Locale = &locale;
  ns1__OrderLine line;
  line.ItemId = "SNP-SINGLE";
  line.Quantity = 1;
  std::string source = "gsoap-shop", order_id = env("ORDER_ID");
  _ns1__CreateOrder order;
  order.Source = &source;
  order.ErpOrderId = &order_id;
  order.Customer = &customer;
  order.Line.push_back(&line);

  _ns1__CreateOrderResponse made;
  basic();
  if (sales.CreateOrder(&order, made) != SOAP_OK) {
    sales.soap_stream_fault(std::cerr);
    return 1;
  }
  _ns1__GetTicket get;
  get.Ticket = made.Ticket;
  ns1__TicketResult ticket;
  basic();
  if (sales.GetTicket(&get, ticket) != SOAP_OK) {
    sales.soap_stream_fault(std::cerr);
    return 1;
  }

  // The same order with an unknown item: a fault with Licentia's code in its detail.
  std::string bad_id = order_id + "-BAD";
  order.ErpOrderId = &bad_id;
  line.ItemId = "NO-SUCH-ITEM";
  _ns1__CreateOrderResponse refused;
  std::string fault = "null";
  basic();
  if (sales.CreateOrder(&order, refused) != SOAP_OK) {
    // The detail of a SOAP 1.2 fault (gSOAP's default) or a 1.1 one, whichever came.
    const SOAP_ENV__Fault *f = sales.soap->fault;
    const SOAP_ENV__Detail *detail =
        !f ? nullptr : sales.soap->version == 2 ? f->SOAP_ENV__Detail : f->detail;
    const char *message = *soap_faultstring(sales.soap);
    if (detail && detail->ns1__LicentiaFault) {
      fault = "{\"code\": " + quoted(detail->ns1__LicentiaFault->Code) +
              ", \"message\": " + quoted(message ? message : "") + "}";
    }
  }

  std::string licenses;
  for (const ns1__License *l : ticket.License) {
    licenses += (licenses.empty() ? "" : ", ") + std::to_string(l->LicenseId);
  }
  std::printf(
      "{\"ticket\": %s, \"created\": %s, \"lines\": %zu, \"state\": %s, \"licenses\": [%s], "
      "\"fault\": %s}\n",
      quoted(made.Ticket).c_str(), made.Created ? "true" : "false", made.Line.size(),
      quoted(ticket.State).c_str(), licenses.c_str(), fault.c_str());
  return 0;
}
