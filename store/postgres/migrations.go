package postgres

// migrations are the PostgreSQL schema, step for step the same as
// store/sqlite's (same version numbers, same tables, columns and indexes):
// append a step to both. Differences: times (Unix milliseconds) are BIGINT,
// blobs BYTEA, scores DOUBLE PRECISION; ids sort in byte order (COLLATE
// "C") as in SQLite; tables listed in insertion order get a seq column
// where SQLite has its rowid.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE sandboxes (
	id              TEXT COLLATE "C" PRIMARY KEY,
	owner           TEXT NOT NULL,
	profile_id      TEXT NOT NULL,
	cargo_id        TEXT NOT NULL DEFAULT '',
	session_id      TEXT NOT NULL DEFAULT '',
	ttl_seconds     BIGINT NOT NULL DEFAULT 0,
	created_at      BIGINT NOT NULL,
	expires_at      BIGINT,
	idle_expires_at BIGINT,
	warm            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sandboxes_owner_created ON sandboxes(owner, created_at, id) WHERE warm = 0;
CREATE INDEX sandboxes_created ON sandboxes(created_at, id) WHERE warm = 0;
CREATE INDEX sandboxes_idle ON sandboxes(idle_expires_at) WHERE session_id != '';
CREATE INDEX sandboxes_expires ON sandboxes(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX sandboxes_warm ON sandboxes(profile_id, created_at, id) WHERE warm = 1;
CREATE INDEX sandboxes_cargo ON sandboxes(cargo_id);

CREATE TABLE cargos (
	id                    TEXT COLLATE "C" PRIMARY KEY,
	owner                 TEXT NOT NULL,
	managed               INTEGER NOT NULL DEFAULT 0,
	managed_by_sandbox_id TEXT NOT NULL DEFAULT '',
	backend               TEXT NOT NULL DEFAULT '',
	locator               TEXT NOT NULL DEFAULT '',
	size_limit_mb         INTEGER NOT NULL DEFAULT 0,
	created_at            BIGINT NOT NULL,
	last_accessed_at      BIGINT NOT NULL
);
CREATE INDEX cargos_owner_managed_created ON cargos(owner, managed, created_at, id);
CREATE INDEX cargos_owner_created ON cargos(owner, created_at, id);
CREATE INDEX cargos_managed_by ON cargos(managed_by_sandbox_id) WHERE managed = 1;

CREATE TABLE executions (
	seq               BIGSERIAL,
	id                TEXT COLLATE "C" PRIMARY KEY,
	sandbox_id        TEXT NOT NULL,
	owner             TEXT NOT NULL,
	session_id        TEXT NOT NULL DEFAULT '',
	exec_type         TEXT NOT NULL,
	code              TEXT NOT NULL DEFAULT '',
	success           INTEGER NOT NULL DEFAULT 0,
	execution_time_ms BIGINT NOT NULL DEFAULT 0,
	output            TEXT,
	error             TEXT,
	payload_ref       TEXT,
	description       TEXT,
	tags              TEXT,
	notes             TEXT,
	created_at        BIGINT NOT NULL
);
CREATE INDEX executions_sandbox_created ON executions(sandbox_id, created_at);
CREATE INDEX executions_owner ON executions(owner);

CREATE TABLE blobs (
	id         TEXT COLLATE "C" PRIMARY KEY,
	owner      TEXT NOT NULL,
	kind       TEXT NOT NULL DEFAULT '',
	data       BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE idempotency (
	owner       TEXT NOT NULL,
	key         TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	pending     INTEGER NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0,
	body        BYTEA,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_expires ON idempotency(expires_at);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`,
	// 2: tombstones of deleted sandboxes.
	`
CREATE TABLE sandbox_tombstones (
	id         TEXT COLLATE "C" PRIMARY KEY,
	owner      TEXT NOT NULL,
	deleted_at BIGINT NOT NULL
);
CREATE INDEX sandbox_tombstones_deleted ON sandbox_tombstones(deleted_at);
`,
	// 3: skills.
	`
CREATE TABLE skill_candidates (
	seq                  BIGSERIAL,
	id                   TEXT COLLATE "C" PRIMARY KEY,
	owner                TEXT NOT NULL,
	skill_key            TEXT NOT NULL,
	scenario_key         TEXT,
	payload_ref          TEXT,
	skill_type           TEXT NOT NULL,
	summary              TEXT,
	usage_notes          TEXT,
	preconditions        TEXT,
	postconditions       TEXT,
	source_execution_ids TEXT NOT NULL,
	status               TEXT NOT NULL,
	latest_score         DOUBLE PRECISION,
	latest_pass          INTEGER,
	last_evaluated_at    BIGINT,
	promotion_release_id TEXT,
	created_by           TEXT NOT NULL DEFAULT '',
	created_at           BIGINT NOT NULL,
	updated_at           BIGINT NOT NULL,
	deleted_at           BIGINT,
	deleted_by           TEXT,
	delete_reason        TEXT
);
CREATE INDEX skill_candidates_owner_created ON skill_candidates(owner, created_at);

CREATE TABLE skill_evaluations (
	id           TEXT COLLATE "C" PRIMARY KEY,
	owner        TEXT NOT NULL,
	candidate_id TEXT NOT NULL,
	benchmark_id TEXT,
	score        DOUBLE PRECISION,
	passed       INTEGER NOT NULL,
	report       TEXT,
	evaluated_by TEXT NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL
);
CREATE INDEX skill_evaluations_candidate ON skill_evaluations(candidate_id);

CREATE TABLE skill_releases (
	id                    TEXT COLLATE "C" PRIMARY KEY,
	owner                 TEXT NOT NULL,
	skill_key             TEXT NOT NULL,
	candidate_id          TEXT NOT NULL,
	version               INTEGER NOT NULL,
	stage                 TEXT NOT NULL,
	is_active             INTEGER NOT NULL,
	release_mode          TEXT NOT NULL,
	promoted_by           TEXT NOT NULL DEFAULT '',
	promoted_at           BIGINT NOT NULL,
	rollback_of           TEXT,
	health_window_end_at  BIGINT,
	upgrade_of_release_id TEXT,
	upgrade_reason        TEXT,
	change_summary        TEXT,
	deleted_at            BIGINT,
	deleted_by            TEXT,
	delete_reason         TEXT,
	UNIQUE (owner, skill_key, version)
);
CREATE INDEX skill_releases_active ON skill_releases(owner, skill_key, stage) WHERE is_active = 1;
CREATE INDEX skill_releases_candidate ON skill_releases(candidate_id);

CREATE TABLE skill_runs (
	id          BIGSERIAL PRIMARY KEY,
	owner       TEXT NOT NULL,
	release_id  TEXT NOT NULL,
	success     INTEGER NOT NULL,
	duration_ms BIGINT NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE INDEX skill_runs_release ON skill_runs(release_id, created_at);
`,
	// 4: leases.
	`
CREATE TABLE leases (
	name       TEXT COLLATE "C" PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
`,
	// 5: durable intent (a stop or delete recorded before it is carried
	// out, so it survives outages and restarts), found by the reconcile
	// loop through a partial index.
	`
ALTER TABLE sandboxes ADD COLUMN intent TEXT NOT NULL DEFAULT '';
ALTER TABLE sandboxes ADD COLUMN intent_at BIGINT;
CREATE INDEX sandboxes_intent ON sandboxes(intent_at) WHERE intent != '';
`,
	// 6: the learning fields of history entries (Shipyard Neo's
	// learn_enabled, learn_status, learn_error, learn_processed_at).
	`
ALTER TABLE executions ADD COLUMN learn_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN learn_status TEXT;
ALTER TABLE executions ADD COLUMN learn_error TEXT;
ALTER TABLE executions ADD COLUMN learn_processed_at BIGINT;
`,
}
