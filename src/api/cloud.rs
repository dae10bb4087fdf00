//! Cloud containers. The vendor's side under `/api/v1/cloud` (HTTP Basic, staff roles):
//! make a container, activate and return licenses, issue and revoke credential files. The
//! license use API under `/cloud/v1`: a token for a signed request of the credential's key
//! (`POST /token`), then with `Authorization: Bearer <token>` open a seat (`POST /seats`),
//! keep it (`POST /seats/{id}/heartbeat`), release it (`DELETE /seats/{id}`), and see the
//! container's licenses and their seats in use (`GET /status`); borrow a seat into a local
//! container (`POST /borrow`, with that container's request: the answer is its update);
//! activate a ticket's licenses into the credential's container (`POST /activate`).
use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::json::Caller;
use super::openapi::{doc, route, Access, Routes};
use super::ApiError;
use crate::error::Error;
use crate::protocol::cloud::{BorrowRequest, OpenRequest, TokenRequest};
use crate::service::{cloud, Core};

type Res = Result<HttpResponse, ApiError>;
type Core_ = web::Data<Core>;

/// The access token of a license use call (`Authorization: Bearer …`).
pub struct Bearer(String);

impl FromRequest for Bearer {
    type Error = ApiError;
    type Future = Ready<Result<Bearer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(
            req.headers()
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(|t| t.trim())
                .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(|t| Bearer(t.to_string()))
                .ok_or(ApiError(Error::Unauthenticated)),
        )
    }
}

async fn create(core: Core_, c: Caller, body: web::Json<cloud::NewCloudContainer>) -> Res {
    Ok(
        HttpResponse::Created()
            .json(cloud::create_container(&core, &c.0, body.into_inner()).await?),
    )
}

async fn get(core: Core_, c: Caller, serial: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(cloud::get_container(&core, &c.0, serial.into_inner()).await?))
}

async fn activate(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<cloud::CloudActivation>,
) -> Res {
    let ids = cloud::activate(&core, &c.0, serial.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Activated { activated: ids }))
}

/// The ids of the licenses activated.
#[derive(Serialize, JsonSchema)]
struct Activated {
    activated: Vec<i64>,
}

/// The ids of the licenses returned.
#[derive(Serialize, JsonSchema)]
struct Returned {
    returned: Vec<i64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Licenses {
    licenses: Vec<i64>,
}

async fn deactivate(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<Licenses>,
) -> Res {
    let ids =
        cloud::deactivate(&core, &c.0, serial.into_inner(), body.into_inner().licenses).await?;
    Ok(HttpResponse::Ok().json(Returned { returned: ids }))
}

async fn issue(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<cloud::CredentialRequest>,
) -> Res {
    let file = cloud::issue_credential(&core, &c.0, serial.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(file))
}

async fn revoke(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<cloud::Revocation>,
) -> Res {
    let r = cloud::revoke_credentials(&core, &c.0, serial.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(r))
}

/// The vendor's routes, inside the JSON API's `/api/v1` scope.
pub fn vendor(r: &mut Routes) {
    use cloud::{CloudActivation, CloudContainer, CredentialFile, CredentialRequest};
    route!(r, post "/cloud/containers" create,
        doc("Make a cloud container for a customer").body::<cloud::NewCloudContainer>()
            .answer::<CloudContainer>(201));
    route!(r, get "/cloud/containers/{serial}" get,
        doc("A cloud container, its licenses and credentials").answer::<CloudContainer>(200));
    route!(r, post "/cloud/containers/{serial}/licenses" activate,
        doc("Activate licenses into a cloud container").body::<CloudActivation>()
            .answer::<Activated>(200));
    route!(r, post "/cloud/containers/{serial}/return" deactivate,
        doc("Return licenses from a cloud container").body::<Licenses>().answer::<Returned>(200));
    route!(r, post "/cloud/containers/{serial}/credentials" issue,
        doc("Issue a credential file for a cloud container").body::<CredentialRequest>()
            .answer::<CredentialFile>(201));
    route!(r, post "/cloud/containers/{serial}/credentials/revoke" revoke,
        doc("Revoke credentials of a cloud container").body::<cloud::Revocation>()
            .answer::<cloud::Revoked>(200));
}

async fn token(core: Core_, body: web::Json<TokenRequest>) -> Res {
    Ok(HttpResponse::Ok().json(cloud::token(&core, body.into_inner()).await?))
}

async fn open(core: Core_, b: Bearer, body: web::Json<OpenRequest>) -> Res {
    Ok(HttpResponse::Created().json(cloud::open(&core, b.0, body.into_inner()).await?))
}

async fn heartbeat(core: Core_, b: Bearer, seat: web::Path<i64>) -> Res {
    Ok(HttpResponse::Ok().json(cloud::heartbeat(&core, b.0, seat.into_inner()).await?))
}

async fn release(core: Core_, b: Bearer, seat: web::Path<i64>) -> Res {
    cloud::release(&core, b.0, seat.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn activate_ticket(core: Core_, b: Bearer, body: web::Json<cloud::CloudActivation>) -> Res {
    let ids = cloud::activate_ticket(&core, b.0, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Activated { activated: ids }))
}

async fn borrow(core: Core_, b: Bearer, body: web::Json<BorrowRequest>) -> Res {
    Ok(HttpResponse::Ok().json(cloud::borrow(&core, b.0, body.into_inner()).await?))
}

async fn status(core: Core_, b: Bearer) -> Res {
    Ok(HttpResponse::Ok().json(cloud::status(&core, b.0).await?))
}

/// The license use API's routes.
pub fn license_use() -> Routes {
    use crate::protocol::cloud::{Lease, Status, Token};
    let mut r = Routes::new("/cloud/v1", Access::Bearer);
    route!(r, post "/token" token,
        doc("An access token for a request signed with the credential's key")
            .body::<TokenRequest>().answer::<Token>(200).public());
    route!(r, post "/seats" open,
        doc("Open a seat of a license").body::<OpenRequest>().answer::<Lease>(201));
    route!(r, post "/seats/{seat}/heartbeat" heartbeat,
        doc("Keep a seat: its lease runs again").answer::<Lease>(200));
    route!(r, delete "/seats/{seat}" release, doc("Release a seat").empty_answer(204));
    route!(r, post "/activate" activate_ticket,
        doc("Activate a ticket's licenses into the credential's container")
            .body::<cloud::CloudActivation>().answer::<Activated>(200));
    route!(r, post "/borrow" borrow,
        doc("Borrow a seat into a local container: the answer is its update")
            .body::<BorrowRequest>().answer::<crate::protocol::Issued>(200));
    route!(r, get "/status" status,
        doc("The container's licenses and their seats in use").answer::<Status>(200));
    r
}

/// The license use API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(license_use().scope());
}
