-- Static addresses as the client asked for them, reported back as EndpointSettings.IPAMConfig.
ALTER TABLE endpoints ADD COLUMN requested_ipv4 TEXT;
ALTER TABLE endpoints ADD COLUMN requested_ipv6 TEXT;
