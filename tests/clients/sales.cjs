// Licentia's Sales service from Node.js with node-soap (the README's "SOAP clients" shows
// this): an order, its ticket, and a refused order's fault. Prints what it got as JSON.
// Environment: LICENTIA_URL (the server), LICENTIA_USER, LICENTIA_PASSWORD, ORDER_ID,
// NODE_PATH (where the `soap` package is).
'use strict';

const soap = require('soap');

async function main() {
  const base = process.env.LICENTIA_URL;
  const sales = await soap.createClientAsync(`${base}/soap/Sales?wsdl`);
  // The WSDL's address is the server's public_url; name the server here if it differs.
  sales.setEndpoint(`${base}/soap/Sales`);
  sales.setSecurity(new soap.BasicAuthSecurity(process.env.LICENTIA_USER, process.env.LICENTIA_PASSWORD));

  const order = {
    Source: 'node-shop',
    ErpOrderId: process.env.ORDER_ID,
    Customer: { ExternalId: 'NODE-1', Name: 'Müller GmbH', Email: 'einkauf@example.com', Locale: 'de' },
    Line: [{ ItemId: 'SNP-SINGLE', Quantity: 1 }],
  };
  const [made] = await sales.CreateOrderAsync(order);
  const [ticket] = await sales.GetTicketAsync({ Ticket: made.Ticket });

  let fault = null;
  try {
    await sales.CreateOrderAsync({ ...order, ErpOrderId: `${order.ErpOrderId}-BAD`, Line: [{ ItemId: 'NO-SUCH-ITEM', Quantity: 1 }] });
  } catch (e) {
    const f = e.root.Envelope.Body.Fault;
    fault = { code: f.detail.LicentiaFault.Code, message: f.faultstring };
  }

  // One License comes as an object, several as a list.
  const licenses = [].concat(ticket.License || []);
  process.stdout.write(`${JSON.stringify({
    ticket: made.Ticket,
    created: made.Created,
    lines: [].concat(made.Line).length,
    state: ticket.State,
    licenses: licenses.map((l) => Number(l.LicenseId)),
    fault,
  })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n${e.body || ''}\n`);
  process.exit(1);
});
