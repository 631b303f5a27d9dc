-- rowhook notify mode: capture through a trigger-fed outbox, for databases without
-- logical replication. `rowhook setup` runs this file (it is built into the binary) and
-- then attaches three triggers to every model's table:
--
--   CREATE TRIGGER rowhook_columns BEFORE INSERT OR UPDATE OR DELETE ON <table>
--       FOR EACH STATEMENT EXECUTE FUNCTION rowhook.remember_columns();
--   CREATE TRIGGER rowhook_capture AFTER INSERT OR UPDATE OR DELETE ON <table>
--       FOR EACH ROW EXECUTE FUNCTION rowhook.capture('<schema>', '<table>');
--   CREATE TRIGGER rowhook_columns_done AFTER INSERT OR UPDATE OR DELETE ON <table>
--       FOR EACH STATEMENT EXECUTE FUNCTION rowhook.remember_columns();
--
-- Running it again changes nothing that exists (idempotent). To remove notify mode:
-- drop the triggers, then `DROP SCHEMA rowhook CASCADE`.

CREATE SCHEMA IF NOT EXISTS rowhook;

-- One row per captured change, written in the changing transaction itself, so a change
-- is in the outbox exactly when it is committed. rowhook deletes rows only after their
-- events are durable in its store; while it is stopped, rows wait here.
CREATE TABLE IF NOT EXISTS rowhook.outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction (64 bits, never reused in the cluster's life); with the
    -- id it makes event ids that stay unique even if the outbox is ever recreated.
    transaction_id xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    -- Where the WAL stood when the change was made: the envelope's `lsn`.
    wal_position pg_lsn NOT NULL DEFAULT pg_catalog.pg_current_wal_insert_lsn(),
    -- The transaction's time (the envelope's `timestamp`).
    changed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    table_schema text NOT NULL,
    table_name text NOT NULL,
    action text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    -- The row in PostgreSQL's record text form, `(42,paid,"a b",)`: every column through
    -- its type's own output function, exactly the text logical replication would carry,
    -- so both modes give the same JSON. A delete stores the old row here.
    item text NOT NULL,
    -- The row before an update.
    old_item text,
    -- The table's column types and names when the change was made (see columns_of), so
    -- a row drained after an ALTER TABLE still lines up with its values.
    columns text NOT NULL
);

-- Outbox rows rowhook could not read (which should never happen), moved here with the
-- reason instead of stopping capture for every other row; `rowhook check` reports them.
CREATE TABLE IF NOT EXISTS rowhook.rejected (
    LIKE rowhook.outbox,
    rejected_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reason text NOT NULL
);

-- A table's columns in order, each as `type_oid:name`, in a text[] literal:
-- {23:id,25:status,"1184:paid at"}. The types are the declared ones, as logical
-- replication describes them.
CREATE OR REPLACE FUNCTION rowhook.columns_of(relation oid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT coalesce(array_agg(atttypid::text || ':' || attname::text ORDER BY attnum), '{}')::text
    FROM pg_attribute
    WHERE attrelid = relation AND attnum > 0 AND NOT attisdropped
$function$;

-- Looking the columns up costs more than writing the row, so it happens once per
-- statement: BEFORE the statement this keeps them in a transaction-local setting that
-- the row trigger reads, AFTER it the setting is cleared again, so that a row trigger
-- firing for a statement on another table (an inheritance child, a partition) never
-- reads a list left over from before an ALTER TABLE, but looks its columns up itself.
-- (SECURITY DEFINER so the application's roles need no rights on schema rowhook; the
-- setting outlives the call because it is not one of the SET clauses.)
CREATE OR REPLACE FUNCTION rowhook.remember_columns() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF TG_WHEN = 'BEFORE' THEN
        PERFORM set_config('rowhook.columns_' || TG_RELID::text, rowhook.columns_of(TG_RELID), true);
    ELSE
        PERFORM set_config('rowhook.columns_' || TG_RELID::text, '', true);
    END IF;
    RETURN NULL;
END
$function$;

-- The trigger function. SECURITY DEFINER: the application's roles need no rights on the
-- outbox. The SET clauses pin the output formats of dates, times, intervals, floats and
-- bytea for the call only (the application's session keeps its own settings), matching
-- what rowhook's replication connection asks for. Its two arguments name the model
-- table: a partition's copy of the trigger keeps them, so rows written to a partition
-- are recorded under the table the model names.
CREATE OR REPLACE FUNCTION rowhook.capture() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO'
SET TimeZone = 'UTC'
SET IntervalStyle = 'iso_8601'
SET extra_float_digits = '3'
SET bytea_output = 'hex'
AS $function$
DECLARE
    -- Set by rowhook_columns for this statement; looked up here when that trigger did not
    -- run for this table (a row routed into a partition, say). The columns are this
    -- table's own: a partition may order them differently from its parent.
    -- (An unset placeholder reads as '' once the session has seen it, hence nullif.)
    names text := coalesce(
        nullif(current_setting('rowhook.columns_' || TG_RELID::text, true), ''),
        rowhook.columns_of(TG_RELID));
    model_schema text := coalesce(TG_ARGV[0], TG_TABLE_SCHEMA);
    model_table text := coalesce(TG_ARGV[1], TG_TABLE_NAME);
    model oid;
    model_names text;
    reordering text;
    new_text text;
    old_text text;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        new_text := NEW::text;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_text := OLD::text;
    END IF;
    IF TG_TABLE_SCHEMA <> model_schema OR TG_TABLE_NAME <> model_table THEN
        -- A partition's row. Written in the model table's column order (as logical
        -- replication publishes it through the root) when the partition orders its
        -- columns differently, which only a partition attached after the fact can.
        model := format('%I.%I', model_schema, model_table)::regclass::oid;
        model_names := rowhook.columns_of(model);
        IF model_names <> names THEN
            SELECT 'SELECT ROW(' || string_agg(format('($1).%I', attname), ', ' ORDER BY attnum)
                   || ')::text'
            INTO reordering
            FROM pg_attribute
            WHERE attrelid = model AND attnum > 0 AND NOT attisdropped;
            IF new_text IS NOT NULL THEN
                EXECUTE reordering INTO new_text USING NEW;
            END IF;
            IF old_text IS NOT NULL THEN
                EXECUTE reordering INTO old_text USING OLD;
            END IF;
            names := model_names;
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rowhook.outbox (table_schema, table_name, action, item, columns)
        VALUES (model_schema, model_table, 'create', new_text, names);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO rowhook.outbox (table_schema, table_name, action, item, old_item, columns)
        VALUES (model_schema, model_table, 'update', new_text, old_text, names);
    ELSE
        INSERT INTO rowhook.outbox (table_schema, table_name, action, item, columns)
        VALUES (model_schema, model_table, 'delete', old_text, names);
    END IF;
    -- Only a wake-up: payloads are capped at 8000 bytes and lost when nobody listens, so
    -- the data lives in the outbox. Identical notifications in a transaction fold into one.
    PERFORM pg_notify('rowhook', '');
    RETURN NULL;
END
$function$;
