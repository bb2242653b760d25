-- The engine's tables. {s} is the configured schema, quoted. Records are kept
-- as JSONB; the values that queries filter on, and those that change after a
-- row is written, are real columns. Every table with an expiry has an index on
-- it, for the sweeper's batched deletes.

-- Sessions: one row per visitor's session (the cookie's ID); its touchpoints
-- are rows of their own. expires_at is the latest expiry of its touchpoints.
CREATE TABLE {s}.sessions (
	id           text        PRIMARY KEY,
	created_at   timestamptz NOT NULL,
	ga_client_id text        NOT NULL DEFAULT '',
	expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON {s}.sessions (expires_at);

-- Touchpoints: one per (session, network, click ID); a repeated click
-- replaces its row. The record itself is in touchpoint.
CREATE TABLE {s}.touchpoints (
	session_id  text        NOT NULL,
	network     text        NOT NULL,
	click_id    text        NOT NULL,
	captured_at timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	touchpoint  jsonb       NOT NULL,
	PRIMARY KEY (session_id, network, click_id)
);
CREATE INDEX touchpoints_click ON {s}.touchpoints (click_id, captured_at);
CREATE INDEX touchpoints_expiry ON {s}.touchpoints (expires_at);

-- Markers: set-if-absent keys with an expiry. kind is 'event' (a webhook's
-- provider and event ID), 'delivery' (a delivery's idempotency key) or
-- 'conversion' (a conversion key). An expired marker counts as absent.
CREATE TABLE {s}.markers (
	kind       text        NOT NULL,
	key        text        NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE INDEX markers_expiry ON {s}.markers (expires_at);

-- Orders: the order index, one entry per order ID; version counts its
-- writes. entry holds the store.OrderEntry.
CREATE TABLE {s}.orders (
	order_id   text        PRIMARY KEY,
	session_id text        NOT NULL DEFAULT '',
	version    bigint      NOT NULL,
	expires_at timestamptz NOT NULL,
	entry      jsonb       NOT NULL
);
CREATE INDEX orders_session ON {s}.orders (session_id) WHERE session_id <> '';
CREATE INDEX orders_expiry ON {s}.orders (expires_at);

-- Order keys: the order ID and its aliases, each pointing to one entry.
CREATE TABLE {s}.order_keys (
	key        text        PRIMARY KEY,
	order_id   text        NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX order_keys_order ON {s}.order_keys (order_id);
CREATE INDEX order_keys_expiry ON {s}.order_keys (expires_at);

-- Conversions. source is the order's source ("page", "webhook:stripe");
-- networks are the credited networks.
CREATE TABLE {s}.conversions (
	id         text        PRIMARY KEY,
	session_id text        NOT NULL DEFAULT '',
	event      text        NOT NULL,
	status     text        NOT NULL,
	source     text        NOT NULL,
	networks   text[]      NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	conversion jsonb       NOT NULL
);
CREATE INDEX conversions_session ON {s}.conversions (session_id, created_at) WHERE session_id <> '';
CREATE INDEX conversions_expiry ON {s}.conversions (expires_at);

-- Deliveries: the queue. The columns are what changes as a delivery moves
-- (state, lease, attempts, the request last sent) and what claims and
-- listings filter on; delivery holds the rest of the record.Delivery, which
-- never changes after it is queued (except by an erasure).
CREATE TABLE {s}.deliveries (
	id            text        PRIMARY KEY,
	conversion_id text        NOT NULL DEFAULT '',
	network       text        NOT NULL,
	state         text        NOT NULL,
	queued_at     timestamptz NOT NULL,
	next_attempt  timestamptz,
	owner         text        NOT NULL DEFAULT '',
	lease_until   timestamptz,
	expires_at    timestamptz,
	tries         integer     NOT NULL DEFAULT 0,
	attempts      jsonb       NOT NULL DEFAULT '[]',
	request       jsonb       NOT NULL,
	reason        text        NOT NULL DEFAULT '',
	delivery      jsonb       NOT NULL
);
-- Claims: the waiting deliveries of one network, earliest due first.
CREATE INDEX deliveries_due ON {s}.deliveries (network, next_attempt, id) WHERE state IN ('queued', 'retrying');
-- The rescuer: running deliveries by the end of their lease.
CREATE INDEX deliveries_lease ON {s}.deliveries (lease_until) WHERE state = 'running';
-- Listings by network or state, newest first, and the queue's statistics.
CREATE INDEX deliveries_network ON {s}.deliveries (network, id);
CREATE INDEX deliveries_state ON {s}.deliveries (state, id);
-- A conversion's deliveries (erasure, listings by conversion).
CREATE INDEX deliveries_conversion ON {s}.deliveries (conversion_id) WHERE conversion_id <> '';
-- The sweeper: delivered and dead deliveries by the end of their retention.
CREATE INDEX deliveries_expiry ON {s}.deliveries (expires_at) WHERE expires_at IS NOT NULL;

-- The webhook log.
CREATE TABLE {s}.webhooks (
	id         text        PRIMARY KEY,
	provider   text        NOT NULL,
	result     text        NOT NULL,
	expires_at timestamptz NOT NULL,
	entry      jsonb       NOT NULL
);
CREATE INDEX webhooks_expiry ON {s}.webhooks (expires_at);

-- Values every node shares (the cookie key).
CREATE TABLE {s}.meta (
	name  text  PRIMARY KEY,
	value bytea NOT NULL
);

-- Hourly counters for the dashboard's overview, added to by every node.
CREATE TABLE {s}.stats (
	hour       timestamptz NOT NULL,
	metric     text        NOT NULL,
	network    text        NOT NULL,
	event      text        NOT NULL,
	currency   text        NOT NULL,
	result     text        NOT NULL,
	count      bigint      NOT NULL,
	sum        bigint      NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (hour, metric, network, event, currency, result)
);
CREATE INDEX stats_expiry ON {s}.stats (expires_at);
