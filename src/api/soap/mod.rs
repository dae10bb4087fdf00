//! SOAP 1.1 and 1.2 adapters described by the hand-kept WSDL in `wsdl/` and XSD in `xsd/`:
//! decode, authenticate, call the same service function as the JSON API, encode.
//!
//! `envelope` reads the request (hostile input refused) and writes answers and faults,
//! `schema` checks the operation against the served XSD, `security` turns the caller's
//! credentials into an actor, and each service has its codec (`sales`, `report`, `admin`,
//! `depot`: the XSD's elements as yaserde types, with what they share in `codec` and the
//! Admin service's typed option tables in `typed`); this file holds the service table and
//! the endpoint that runs them in order.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::Error;
use crate::service::Core;

mod admin;
mod cloud;
mod codec;
mod depot;
mod envelope;
mod records;
mod report;
mod sales;
mod schema;
mod security;
mod typed;

use envelope::{fault, fault_coded, respond, Version};

type Core_ = web::Data<Core>;

/// A SOAP service: its WSDL and schema, and the operations implemented for it.
pub struct Service {
    pub name: &'static str,
    pub ns: &'static str,
    pub wsdl: &'static str,
    pub xsd_name: &'static str,
    pub xsd: &'static str,
    /// Must be exactly the operations the WSDL declares (a test checks it).
    pub operations: &'static [&'static str],
}

pub const SERVICES: &[Service] = &[
    Service {
        name: "Sales",
        ns: "http://licentia.dev/ns/sales/v1",
        wsdl: include_str!("../../../wsdl/sales-v1.wsdl"),
        xsd_name: "licentia-sales-v1.xsd",
        xsd: include_str!("../../../xsd/licentia-sales-v1.xsd"),
        operations: &[
            "CreateOrder",
            "AddToOrder",
            "GetTicket",
            "GetLicense",
            "DisableTicket",
            "EnableTicket",
            "GetOrder",
            "ResendTicketMail",
            "WithdrawLicenses",
            "ReplaceLicense",
            "SplitLicense",
            "CreateProductionOrder",
            "GetProductionOrder",
        ],
    },
    Service {
        name: "Report",
        ns: "http://licentia.dev/ns/report/v1",
        wsdl: include_str!("../../../wsdl/report-v1.wsdl"),
        xsd_name: "licentia-report-v1.xsd",
        xsd: include_str!("../../../xsd/licentia-report-v1.xsd"),
        operations: &["RunReport"],
    },
    Service {
        name: "Admin",
        ns: "http://licentia.dev/ns/admin/v1",
        wsdl: include_str!("../../../wsdl/admin-v1.wsdl"),
        xsd_name: "licentia-admin-v1.xsd",
        xsd: include_str!("../../../xsd/licentia-admin-v1.xsd"),
        operations: &[
            "BlacklistContainer",
            "RemoveFromBlacklist",
            "ResetContainer",
            "AssignContainer",
            "DecideManipulation",
            "PushLicense",
            "CreateCloudContainer",
            "ActivateIntoCloudContainer",
            "ReturnFromCloudContainer",
            "IssueCloudCredential",
            "RevokeCloudCredentials",
            "ListApprovals",
            "DecideApproval",
            "PutCustomer",
            "GetCustomer",
            "ListCustomers",
            "DeleteCustomer",
            "GetContainer",
            "GetHistory",
            "ListUsers",
            "AddUser",
            "ChangeUser",
            "ListItems",
            "GetItem",
            "CreateItem",
            "ChangeItem",
            "GetSettings",
            "PutSettings",
        ],
    },
    Service {
        name: "Depot",
        ns: "http://licentia.dev/ns/depot/v1",
        wsdl: include_str!("../../../wsdl/depot-v1.wsdl"),
        xsd_name: "licentia-depot-v1.xsd",
        xsd: include_str!("../../../xsd/licentia-depot-v1.xsd"),
        operations: &[
            "TicketInfo",
            "Template",
            "Activate",
            "Reactivate",
            "Restore",
            "Return",
            "PullUpdates",
            "ConfirmReceipt",
        ],
    },
];

/// A service by name, in any case (`/soap/sales` is `/soap/Sales`).
fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The answer to a path that names no service: which ones there are.
fn no_service(name: &str) -> HttpResponse {
    let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
    let shown: String = name.chars().take(64).collect();
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body(format!(
            "there is no SOAP service {shown:?} here; the services are {}, each at              /soap/<service> (its WSDL at /soap/<service>?wsdl)\n",
            names.join(", ")
        ))
}

async fn endpoint(
    core: Core_,
    limiter: web::Data<super::gateway::TicketLimiter>,
    name: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some(svc) = service(&name) else {
        return no_service(&name);
    };
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|x| x.to_str().ok())
        .unwrap_or("");
    // Read here, under the configured limit, so that a body too large is a fault too.
    let limit = core.config().max_body_bytes;
    let body = match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            let e = Error::invalid("envelope", format!("the body could not be read: {e}"));
            return fault(svc, Version::of_content_type(ct), &e);
        }
        Err(_) => {
            let e = Error::invalid("envelope", format!("is larger than {limit} bytes"));
            return fault(svc, Version::of_content_type(ct), &e);
        }
    };
    let request = match envelope::read(svc, &req, ct, &body) {
        Ok(r) => r,
        Err(r) => return fault_coded(svc, r.version, &r.error, r.code),
    };
    let v = request.version;
    let op = request.op();
    // The Depot is the activation wizard's: the ticket or the container's signature is the
    // credential, as in the JSON gateway.
    let out = if svc.name == "Depot" {
        depot::call(&core, &limiter, &req, op).await
    } else {
        match security::actor(&core, &req, &request).await {
            Ok(actor) => match svc.name {
                "Sales" => sales::call(&core, &actor, op).await,
                "Report" => report::call(&core, &actor, op).await,
                "Admin" => admin::call(&core, &actor, op).await,
                s => Err(Error::internal(format!(
                    "{s}.{} is declared but not wired",
                    op.name
                ))),
            },
            Err(e) => Err(e),
        }
    };
    match out {
        Ok(xml) => respond(v, StatusCode::OK, &xml),
        // Missing or wrong credentials: 401 with a challenge, so that clients that send
        // Basic credentials only when asked (suds, .NET, Java's authenticators) send them;
        // the body is the fault as ever.
        Err(e @ Error::Unauthenticated) => {
            let mut r = fault(svc, v, &e);
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                actix_web::http::header::HeaderValue::from_static(
                    "Basic realm=\"Licentia SOAP\", charset=\"UTF-8\"",
                ),
            );
            r
        }
        Err(e) => {
            // The service names fields as the JSON API does; the client sent the schema's.
            let e = match schema::of(svc) {
                Ok(s) => s.name_field(&op.name, e),
                Err(_) => e,
            };
            fault(svc, v, &e)
        }
    }
}

/// `GET /soap/<Service>?wsdl`: the WSDL with this server's address.
async fn wsdl(core: Core_, name: web::Path<String>) -> HttpResponse {
    match service(&name) {
        Some(svc) => HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(
                svc.wsdl
                    .replace("{{BASE}}", core.config().public_url.trim_end_matches('/')),
            ),
        None => no_service(&name),
    }
}

async fn xsd(name: web::Path<String>) -> HttpResponse {
    match SERVICES.iter().find(|s| s.xsd_name == name.as_str()) {
        Some(svc) => HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(svc.xsd),
        None => HttpResponse::NotFound().finish(),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/soap/xsd/{name}", web::get().to(xsd))
        .route("/soap/{service}", web::post().to(endpoint))
        .route("/soap/{service}", web::get().to(wsdl))
        .route("/soap/{service}", web::head().to(wsdl));
}
