-- A container is its network namespace: the device and inode of the namespace's nsfs file
-- identify it, whatever reference (a name, any PID inside it) reached it. NULL only in rows
-- written before this column existed; start-up fills them in.
ALTER TABLE containers ADD COLUMN ns_dev INTEGER;
ALTER TABLE containers ADD COLUMN ns_ino INTEGER;
CREATE UNIQUE INDEX containers_namespace ON containers (ns_dev, ns_ino) WHERE ns_dev IS NOT NULL;
