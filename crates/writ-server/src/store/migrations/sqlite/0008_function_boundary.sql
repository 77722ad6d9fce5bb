-- A function's permissions boundary: the policies of the operator's token that gave the
-- function its identity policies, as a JSON array of policy documents. The function may do
-- only what both its policies and its boundary allow, so an operator scoped to some
-- actions cannot give a function more than it may do itself. NULL: no identity policies
-- were set, or they were set before boundaries existed (and by an operator who could).
ALTER TABLE functions ADD COLUMN boundary TEXT;
