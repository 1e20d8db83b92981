"""Attribution graphs over transcoder sets."""
