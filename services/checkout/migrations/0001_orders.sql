-- The checkout service's first schema: orders, keyed by an id the service returns.
CREATE TABLE IF NOT EXISTS orders (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item       text        NOT NULL CHECK (length(item) BETWEEN 1 AND 200),
    quantity   integer     NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    created_at timestamptz NOT NULL DEFAULT now()
);
