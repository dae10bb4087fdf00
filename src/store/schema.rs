// One schema in portable types, shared by SQLite and PostgreSQL.
diesel::table! {
    firms (id) {
        id -> BigInt,
        firm_code -> BigInt,
        name -> Text,
        key_id -> Text,
        public_key -> Text,
        private_key_sealed -> Text,
        created_at -> Timestamp,
    }
}
diesel::table! {
    items (id) {
        id -> BigInt,
        firm_id -> BigInt,
        item_id -> Text,
        name -> Text,
        kind -> Text,
        product_code -> BigInt,
        options -> Text,
        active -> Bool,
        version -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}
diesel::table! {
    customers (id) {
        id -> BigInt,
        external_id -> Text,
        name -> Text,
        email -> Text,
        locale -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        scope -> Text,
    }
}
diesel::table! {
    tickets (id) {
        id -> BigInt,
        code -> Text,
        customer_id -> BigInt,
        state -> Text,
        created_at -> Timestamp,
    }
}
diesel::table! {
    orders (id) {
        id -> BigInt,
        source -> Text,
        erp_order_id -> Text,
        customer_id -> BigInt,
        ticket_id -> BigInt,
        comment -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}
diesel::table! {
    order_lines (id) {
        id -> BigInt,
        order_id -> BigInt,
        batch_key -> Text,
        position -> Integer,
        item_id -> BigInt,
        quantity -> Integer,
    }
}
diesel::table! {
    licenses (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        order_line_id -> BigInt,
        item_id -> BigInt,
        firm_id -> BigInt,
        product_code -> BigInt,
        options -> Text,
        state -> Text,
        generation -> Integer,
        version -> Integer,
        serial -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        self_service_used -> Integer,
    }
}
diesel::table! {
    containers (id) {
        id -> BigInt,
        serial -> Text,
        kind -> Text,
        customer_id -> Nullable<BigInt>,
        public_key -> Text,
        state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        enc_key -> Text,
        fingerprint -> Text,
        state_reason -> Text,
        state_firm_id -> Nullable<BigInt>,
    }
}
diesel::table! {
    container_firms (container_id, firm_id) {
        container_id -> BigInt,
        firm_id -> BigInt,
        counter -> BigInt,
        digest -> Text,
        content -> Text,
        confirmed_at -> Timestamp,
    }
}
diesel::table! {
    updates (id) {
        id -> BigInt,
        container_id -> BigInt,
        firm_id -> BigInt,
        counter_from -> BigInt,
        counter_to -> BigInt,
        digest_after -> Text,
        content_after -> Text,
        changes -> Text,
        state -> Text,
        fulfils -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
    }
}
diesel::table! {
    firm_keys (id) {
        id -> BigInt,
        firm_id -> BigInt,
        key_id -> Text,
        public_key -> Text,
        private_key_sealed -> Text,
        endorsement -> Text,
        created_at -> Timestamp,
    }
}
diesel::table! {
    settings (firm_id) {
        firm_id -> BigInt,
        body -> Text,
        version -> Integer,
        updated_at -> Timestamp,
    }
}
diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        digest_secret -> Text,
    }
}
diesel::table! {
    events (id) {
        id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        interface -> Text,
        action -> Text,
        order_id -> Nullable<BigInt>,
        ticket -> Nullable<Text>,
        license_id -> Nullable<BigInt>,
        serial -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}
diesel::table! {
    audit_head (id) {
        id -> BigInt,
        last_event_id -> BigInt,
        last_hash -> Text,
    }
}

diesel::table! {
    blacklist (id) {
        id -> BigInt,
        firm_id -> BigInt,
        serial -> Text,
        description -> Text,
        placed_at -> Timestamp,
        placed_by -> Text,
        lock_update_id -> Nullable<BigInt>,
        lock_sent_at -> Nullable<Timestamp>,
        lock_validated_at -> Nullable<Timestamp>,
        removed_at -> Nullable<Timestamp>,
        removed_by -> Nullable<Text>,
        removed_reason -> Nullable<Text>,
    }
}

diesel::table! {
    withdrawals (id) {
        id -> BigInt,
        container_id -> BigInt,
        firm_id -> BigInt,
        license_id -> BigInt,
        reason -> Text,
        created_at -> Timestamp,
        done_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    approvals (id) {
        id -> BigInt,
        firm_id -> BigInt,
        kind -> Text,
        license_id -> Nullable<BigInt>,
        old_serial -> Text,
        serial -> Text,
        why -> Text,
        state -> Text,
        requested_at -> Timestamp,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        reason -> Text,
    }
}

diesel::table! {
    activation_counts (firm_id, month, shard) {
        firm_id -> BigInt,
        month -> Text,
        shard -> BigInt,
        activations -> BigInt,
        refused -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        recipient -> Text,
        locale -> Text,
        params -> Text,
        attachment_name -> Nullable<Text>,
        attachment -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Text,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    job_runs (job, scheduled_at) {
        job -> Text,
        scheduled_at -> Timestamp,
        node -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        outcome -> Text,
        detail -> Text,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        connector -> Text,
        reference -> Text,
        received_at -> Timestamp,
        outcome -> Text,
        detail -> Text,
        ticket -> Nullable<Text>,
        body -> Text,
    }
}

diesel::table! {
    writebacks (id) {
        id -> BigInt,
        connector -> Text,
        order_id -> BigInt,
        url -> Text,
        content_type -> Text,
        body -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Text,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    soap_nonces (nonce) {
        nonce -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    request_uses (container_id, nonce) {
        container_id -> BigInt,
        nonce -> Text,
        operation -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    production_orders (id) {
        id -> BigInt,
        order_id -> BigInt,
        firm_id -> BigInt,
        dongles -> Integer,
        created_by -> Text,
        created_at -> Timestamp,
        cancelled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    production_slots (id) {
        id -> BigInt,
        production_order_id -> BigInt,
        slot -> Integer,
        serial -> Nullable<Text>,
        station -> Nullable<Text>,
        assigned_at -> Nullable<Timestamp>,
        failures -> Integer,
        last_failure -> Nullable<Text>,
        last_failure_serial -> Nullable<Text>,
        receipt_recorded_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    production_slot_licenses (license_id) {
        slot_id -> BigInt,
        license_id -> BigInt,
    }
}

diesel::table! {
    cloud_authorities (firm_id) {
        firm_id -> BigInt,
        certificate -> Text,
        private_key_sealed -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    cloud_credentials (id) {
        id -> BigInt,
        container_id -> BigInt,
        firm_id -> BigInt,
        fingerprint -> Text,
        not_after -> Timestamp,
        issued_by -> Text,
        issued_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    cloud_tokens (token_hash) {
        token_hash -> Text,
        credential_id -> BigInt,
        nonce -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    cloud_seats (id) {
        id -> BigInt,
        license_id -> BigInt,
        slot -> Integer,
        credential_id -> BigInt,
        station -> Text,
        holders -> Integer,
        opened_at -> Timestamp,
        expires_at -> Timestamp,
        borrowed_license_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    cloud_borrows (license_id) {
        license_id -> BigInt,
        from_license_id -> BigInt,
        until -> Timestamp,
    }
}

diesel::table! {
    cloud_use_days (license_id, day) {
        license_id -> BigInt,
        day -> Text,
        opened -> BigInt,
        peak -> Integer,
        denials -> BigInt,
    }
}

diesel::joinable!(items -> firms (firm_id));
diesel::joinable!(licenses -> items (item_id));
diesel::joinable!(licenses -> tickets (ticket_id));
diesel::joinable!(order_lines -> items (item_id));
diesel::joinable!(orders -> tickets (ticket_id));
diesel::joinable!(tickets -> customers (customer_id));
diesel::joinable!(production_slots -> production_orders (production_order_id));
diesel::joinable!(production_slot_licenses -> production_slots (slot_id));
diesel::joinable!(production_slot_licenses -> licenses (license_id));
diesel::joinable!(cloud_credentials -> containers (container_id));
diesel::joinable!(cloud_tokens -> cloud_credentials (credential_id));
diesel::joinable!(cloud_seats -> licenses (license_id));
diesel::joinable!(cloud_use_days -> licenses (license_id));
diesel::table! {
    webhooks (id) {
        id -> BigInt,
        url -> Text,
        events -> Text,
        secret -> Text,
        description -> Text,
        active -> Bool,
        cursor_event_id -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        webhook_id -> BigInt,
        event_id -> BigInt,
        kind -> Text,
        body -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Text,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));

diesel::table! {
    audit_key (id) {
        id -> Integer,
        public_key -> Text,
        sealed_private -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_checkpoints (id) {
        id -> BigInt,
        event_id -> BigInt,
        event_hash -> Text,
        signed_at -> Timestamp,
        signature -> Text,
    }
}

diesel::table! {
    license_units (container_id, license_id) {
        container_id -> BigInt,
        license_id -> BigInt,
        used -> BigInt,
        made_at -> Timestamp,
        reported_at -> Timestamp,
    }
}

diesel::table! {
    report_downloads (token_hash) {
        token_hash -> Text,
        report -> Text,
        params -> Text,
        report_at -> Timestamp,
        rows_of -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    firms,
    items,
    customers,
    tickets,
    orders,
    order_lines,
    licenses,
    settings,
    containers,
    container_firms,
    updates,
    firm_keys,
    users,
    events,
    audit_head,
    blacklist,
    withdrawals,
    approvals,
    activation_counts,
    outbox,
    job_runs,
    notifications,
    writebacks,
    webhooks,
    webhook_deliveries,
    audit_key,
    audit_checkpoints,
    soap_nonces,
    request_uses,
    production_orders,
    production_slots,
    production_slot_licenses,
    cloud_authorities,
    cloud_credentials,
    cloud_tokens,
    cloud_seats,
    cloud_borrows,
    cloud_use_days,
    license_units
);
