"""What the devices' web server (httpsd) answers outside the API: FortiGate and FortiManager alike."""

#: The 404 page for a URL no route knows: Apache-style, as both devices send it.
NOT_FOUND_HTML = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>404 Not Found</title></head>'
    "<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>"
)
#: The content type of httpsd's own pages.
HTML_TYPE = "text/html; charset=iso-8859-1"
