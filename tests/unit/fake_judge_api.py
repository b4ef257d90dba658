"""An OpenAI-compatible judge endpoint on 127.0.0.1 for the API judge's tests: scripted replies, extra
headers, and replies (or headers) trickled a byte at a time."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sr_reply(refused, conv, spec):
    return f"#overall_reasoning x\n#scores\n1.a r\n1.b {refused}\n2.a r\n2.b {conv}\n3.a r\n3.b {spec}\n"


class FakeServer:
    """An OpenAI-compatible endpoint on 127.0.0.1; ``responder(request) -> (status, body)``."""

    def __init__(self):
        self.requests, self.responder = [], None
        self.headers, self.trickle_s = {}, 0.0      # extra reply headers; seconds between the body's bytes
        self.header_trickle_s = 0.0                 # seconds between the bytes of the status line and headers
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "json": body})
                status, reply = fake.responder(body)
                data = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
                if fake.header_trickle_s:
                    head = f"HTTP/1.0 {status} OK\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    try:
                        for i in range(len(head)):
                            self.wfile.write(head[i:i + 1])
                            self.wfile.flush()
                            time.sleep(fake.header_trickle_s)
                    except OSError:                # the client gave up
                        pass
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in fake.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if not fake.trickle_s:
                    self.wfile.write(data)
                    return
                try:
                    for i in range(len(data)):     # one byte at a time: each socket read is quick
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(fake.trickle_s)
                except OSError:                    # the client gave up
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()


def chat(content):
    return 200, {"choices": [{"message": {"role": "assistant", "content": content}}]}
