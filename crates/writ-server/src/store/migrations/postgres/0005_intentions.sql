CREATE TABLE intentions (
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    action TEXT NOT NULL,
    permissions TEXT,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (source, destination)
);
CREATE TABLE intentions_index (
    id BIGINT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO intentions_index (id, value) VALUES (1, 0);
