-- The small shop `rowhook demo` runs on: customers place orders, and visitors ask to be
-- called back. The demo creates it in a database of its own and throws it away after.

CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status text NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
    total numeric(10, 2) NOT NULL,
    items jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE callback_requests (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone text NOT NULL,
    name text NOT NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    handled boolean NOT NULL DEFAULT false
);

-- Tasks a CRM sends to rowhook's inbound endpoint; a model too, so rowhook sends each on.
CREATE TABLE tasks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    title text NOT NULL,
    phone text,
    received_at timestamptz NOT NULL
);
