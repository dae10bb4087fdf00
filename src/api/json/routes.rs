//! Every route under `/api/v1`, each with what the OpenAPI document says of it, and the
//! document itself (`GET /api/v1/openapi.json`).
use actix_web::HttpResponse;
use serde_json::Value;

use super::*;
use crate::api::openapi::{doc, route, Access, Routes};

/// Every route under `/api/v1` with what the OpenAPI document says of it.
pub fn routes() -> Routes {
    use catalog::{Customer, CustomerData, Item, ItemChange, NewItem};
    use production::ProductionOrderView;
    let mut r = Routes::new("/api/v1", Access::Basic);
    route!(r, get "/openapi.json" openapi, doc("This document").answer::<Value>(200).public());
    crate::api::cloud::vendor(&mut r);
    route!(r, get "/items" list_items, doc("The catalog's items").answer::<Vec<Item>>(200));
    route!(r, post "/items" create_item,
        doc("Add an item to the catalog").body::<NewItem>().answer::<Item>(201));
    route!(r, get "/items/{item_id}" get_item, doc("One item").answer::<Item>(200));
    route!(r, patch "/items/{item_id}" change_item,
        doc("Change an item").body::<ItemChange>().answer::<Item>(200));
    route!(r, get "/customers" list_customers,
        doc("Customers, a page at a time, by external id").query::<CustomersQuery>()
            .answer::<Vec<Customer>>(200));
    route!(r, put "/customers" put_customer,
        doc("Create or change a customer by external id").body::<CustomerData>()
            .answer::<Customer>(200));
    route!(r, get "/customers/{external_id}" get_customer,
        doc("One customer").query::<ScopeQuery>().answer::<Customer>(200));
    route!(r, delete "/customers/{external_id}" delete_customer,
        doc("Delete a customer who owns no licenses; their containers lose the owner")
            .query::<ScopeQuery>().answer::<CustomerDeleted>(200));
    route!(r, post "/orders" create_order,
        doc("Create an order and its ticket (the same order again answers the first one)")
            .body::<orders::NewOrder>().answer::<orders::OrderView>(201)
            .answer::<orders::OrderView>(200));
    route!(r, get "/orders/{source}/{erp_order_id}" get_order,
        doc("An order by its source and ERP order id").answer::<orders::OrderView>(200));
    route!(r, post "/orders/{source}/{erp_order_id}/ticket-mail" resend_ticket_mail,
        doc("Send the ticket mail again").answer::<Queued>(202));
    route!(r, post "/orders/{source}/{erp_order_id}/lines" add_to_order,
        doc("Append lines to an order's ticket (a resend of appended lines changes nothing)")
            .body::<orders::AddToOrder>().answer::<orders::OrderView>(201)
            .answer::<orders::OrderView>(200));
    route!(r, post "/production/orders" create_production_order,
        doc("A production order: dongles to program").body::<production::NewProductionOrder>()
            .answer::<ProductionOrderView>(201).answer::<ProductionOrderView>(200));
    route!(r, get "/production/orders/{id}" get_production_order,
        doc("A production order and its slots").answer::<ProductionOrderView>(200));
    route!(r, post "/production/orders/{id}/cancel" cancel_production_order,
        doc("Cancel the slots not yet programmed").answer::<ProductionOrderView>(200));
    route!(r, post "/production/orders/{id}/program" program_dongle,
        doc("The update that programs a dongle in a slot").body::<production::ProgramRequest>()
            .answer::<production::Programmed>(200));
    route!(r, post "/production/orders/{id}/receipt" dongle_receipt,
        doc("A programmed dongle's receipt").body::<production::ReceiptRequest>()
            .answer::<production::ProductionReceipt>(200));
    route!(r, post "/production/orders/{id}/failed" dongle_failed,
        doc("A slot whose dongle failed").body::<production::FailedRequest>()
            .answer::<production::SlotView>(200));
    route!(r, post "/production/dongles/{serial}/recycle" recycle_dongle,
        doc("Recycle a dongle for a new programming").body::<production::RecycleRequest>()
            .answer::<production::Recycled>(200));
    route!(r, post "/production/dongles/{serial}/lost" write_off_dongle,
        doc("Write off a lost dongle").body::<production::LostRequest>()
            .answer::<production::Lost>(200));
    route!(r, get "/tickets/{code}" get_ticket,
        doc("A ticket and its licenses").answer::<orders::TicketView>(200));
    route!(r, put "/tickets/{code}/state" set_ticket_state,
        doc("Disable a ticket (it activates nothing and says why) or enable it again")
            .body::<TicketStateChange>().answer::<orders::TicketView>(200));
    route!(r, post "/licenses/withdraw" withdraw,
        doc("Withdraw licenses").body::<lifecycle::WithdrawRequest>()
            .answer::<Vec<lifecycle::LicenseChange>>(200));
    route!(r, post "/licenses/replace" replace,
        doc("Replace a license by another item's").body::<lifecycle::ReplaceRequest>()
            .answer::<lifecycle::Replaced>(200));
    route!(r, post "/licenses/split" split,
        doc("Split a license's quantity").body::<lifecycle::SplitRequest>().answer::<Split>(200));
    route!(r, get "/licenses/{id}" get_license,
        doc("One license with its ticket's code").answer::<orders::LicenseWithTicket>(200));
    route!(r, get "/containers/{serial}" get_container,
        doc("A container as support sees it").answer::<activation::ContainerView>(200));
    route!(r, post "/containers/{serial}/licenses" push_license,
        doc("Push a license into a container (delivered at its next contact)")
            .body::<PushLicense>().answer::<Queued>(202));
    route!(r, post "/containers/{serial}/reset" reset,
        doc("Reset a container: its licenses go back to their tickets").query::<FirmQuery>()
            .answer::<Reset>(200));
    route!(r, post "/containers/{serial}/decision" decide_manipulation,
        doc("Decide on a manipulated container: resynchronise or blacklist")
            .body::<lifecycle::ManipulationDecision>().answer::<activation::ContainerView>(200));
    route!(r, put "/containers/{serial}/customer" assign,
        doc("Assign a container to a customer").body::<AssignBody>().answer::<Assigned>(200));
    route!(r, post "/blacklist" blacklist_add,
        doc("Blacklist a container").body::<BlacklistAdd>().answer::<Blacklisted>(201));
    route!(r, post "/blacklist/{serial}/remove" blacklist_remove,
        doc("Take a container off the blacklist").body::<RemoveBody>().answer::<Removed>(200));
    route!(r, get "/approvals" list_approvals,
        doc("Approval requests").query::<StateQuery>().answer::<Vec<lifecycle::ApprovalView>>(200));
    route!(r, post "/approvals/{id}/approve" approve,
        doc("Approve a request").body::<DecisionBody>().answer::<lifecycle::ApprovalView>(200));
    route!(r, post "/approvals/{id}/deny" deny,
        doc("Deny a request").body::<DecisionBody>().answer::<lifecycle::ApprovalView>(200));
    route!(r, get "/reports/{name}" report,
        doc("Run a report; its parameters are query parameters, format=csv|json")
            .query::<std::collections::HashMap<String, String>>()
            .answer::<reports::ReportJson>(200).csv());
    route!(r, get "/mail" list_mail,
        doc("The mail queue").query::<StateQuery>().answer::<Vec<mail::MailView>>(200));
    route!(r, post "/mail/{id}/requeue" requeue_mail,
        doc("Send a mail again").answer::<Queued>(200));
    route!(r, get "/connectors/log" connector_log,
        doc("Shop notifications and ERP write-backs").query::<ConnectorQuery>()
            .answer::<ConnectorLog>(200));
    route!(r, post "/connectors/writebacks/{id}/requeue" requeue_writeback,
        doc("Send a write-back again").answer::<Queued>(200));
    route!(r, get "/webhooks" list_webhooks,
        doc("Webhook subscriptions").answer::<Vec<webhooks::WebhookView>>(200));
    route!(r, post "/webhooks" create_webhook,
        doc("Subscribe a URL to event kinds").body::<webhooks::NewSubscription>()
            .answer::<webhooks::Made>(201));
    route!(r, patch "/webhooks/{id}" change_webhook,
        doc("Pause or resume a subscription").body::<WebhookChange>()
            .answer::<webhooks::WebhookView>(200));
    route!(r, delete "/webhooks/{id}" delete_webhook,
        doc("Delete a subscription").answer::<Deleted>(200));
    route!(r, get "/webhook-deliveries" list_deliveries,
        doc("Webhook deliveries").query::<DeliveryQuery>()
            .answer::<Vec<webhooks::DeliveryView>>(200));
    route!(r, post "/webhook-deliveries/{id}/requeue" requeue_delivery,
        doc("Send a delivery again").answer::<Queued>(200));
    route!(r, get "/jobs" list_jobs, doc("Scheduled jobs").answer::<Vec<jobs::JobView>>(200));
    route!(r, post "/jobs/{name}/run" run_job, doc("Run a job now").answer::<JobRun>(200));
    route!(r, get "/settings" get_settings, doc("The vendor's settings").answer::<Settings>(200));
    route!(r, put "/settings" put_settings,
        doc("Replace the vendor's settings").body::<Settings>().answer::<Settings>(200));
    route!(r, get "/users" list_users, doc("Users").answer::<Vec<users::User>>(200));
    route!(r, post "/users" add_user,
        doc("Add a user").body::<users::NewUser>().answer::<users::User>(201));
    route!(r, patch "/users/{username}" change_user,
        doc("Change a user's role, password or state").body::<users::UserChange>()
            .answer::<users::User>(200));
    route!(r, get "/history" history,
        doc("History events of a ticket, order, container or license").query::<HistoryQuery>()
            .answer::<Vec<audit::EventRow>>(200));
    route!(r, get "/history/checkpoints" list_checkpoints,
        doc("Signed checkpoints of the history and the audit key").answer::<Checkpoints>(200));
    route!(r, post "/history/checkpoints" sign_checkpoint,
        doc("Sign a checkpoint of the history's head").answer::<audit::Checkpoint>(201)
            .answer::<NoCheckpoint>(200));
    r
}

/// The OpenAPI document of every JSON route (this API, the activation gateway, the cloud
/// license use API), made once.
fn document() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let parts = [
            routes(),
            crate::api::gateway::routes(),
            crate::api::cloud::license_use(),
        ];
        crate::api::openapi::document(&parts, "Licentia", env!("CARGO_PKG_VERSION"))
    })
}

pub(super) async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
