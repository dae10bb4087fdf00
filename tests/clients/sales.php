<?php
// Licentia's Sales service from PHP's SoapClient (the README's "SOAP clients" shows this):
// an order, its ticket, and a refused order's fault. Prints what it got as JSON.
// Environment: LICENTIA_URL (the server), LICENTIA_USER, LICENTIA_PASSWORD, ORDER_ID.
$base = getenv('LICENTIA_URL');
$sales = new SoapClient("$base/soap/Sales?wsdl", [
    // The WSDL's address is the server's public_url; name the server here if it differs.
    'location' => "$base/soap/Sales",
    'login' => getenv('LICENTIA_USER'),
    'password' => getenv('LICENTIA_PASSWORD'),
    'soap_version' => SOAP_1_1,
    // A list with one element stays a list (License, Line), as with several.
    'features' => SOAP_SINGLE_ELEMENT_ARRAYS,
    'cache_wsdl' => WSDL_CACHE_NONE,
    'exceptions' => true,
]);

$order = [
    'Source' => 'php-shop',
    'ErpOrderId' => getenv('ORDER_ID'),
    'Customer' => ['ExternalId' => 'PHP-1', 'Name' => 'Müller GmbH',
        'Email' => 'einkauf@example.com', 'Locale' => 'de'],
    'Line' => [['ItemId' => 'SNP-SINGLE', 'Quantity' => 1]],
];
$made = $sales->CreateOrder($order);
$ticket = $sales->GetTicket(['Ticket' => $made->Ticket]);

$order['ErpOrderId'] .= '-BAD';
$order['Line'] = [['ItemId' => 'NO-SUCH-ITEM', 'Quantity' => 1]];
$fault = null;
try {
    $sales->CreateOrder($order);
} catch (SoapFault $f) {
    $fault = ['code' => $f->detail->LicentiaFault->Code, 'message' => $f->getMessage()];
}

echo json_encode([
    'ticket' => $made->Ticket,
    'created' => $made->Created,
    'lines' => count($made->Line),
    'state' => $ticket->State,
    'licenses' => array_map(fn ($l) => $l->LicenseId, $ticket->License),
    'fault' => $fault,
]), "\n";
