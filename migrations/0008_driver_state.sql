-- Each driver keeps its own state as JSON (a bridge's name, whether it was adopted, its MTU; a
-- macvlan's parent and mode). The one column all drivers share is the kernel link a network
-- claims, unique among networks: its bridge, or the parent its macvlans hang off.
ALTER TABLE networks ADD COLUMN driver_state TEXT NOT NULL DEFAULT '{}';
UPDATE networks
   SET driver_state = json_object(
           'bridge', bridge,
           'adopted', json(CASE WHEN bridge_adopted THEN 'true' ELSE 'false' END),
           'mtu', mtu)
 WHERE bridge IS NOT NULL;
ALTER TABLE networks RENAME COLUMN bridge TO link;
ALTER TABLE networks DROP COLUMN bridge_adopted;
ALTER TABLE networks DROP COLUMN mtu;
