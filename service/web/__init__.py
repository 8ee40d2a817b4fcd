"""What the service shows people and the web around the channels: the public rule and source pages, the links
every channel gives out, the offline API docs."""
