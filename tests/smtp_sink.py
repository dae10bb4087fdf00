"""A real SMTP server for the tests (aiosmtpd) that keeps every message it receives as a
JSON file in a folder: envelope, subject, and each MIME part decoded.

    python smtp_sink.py PORT FOLDER

Prints READY when it accepts connections; stops on SIGTERM.
"""
import base64
import asyncio
import email
import email.policy
import json
import os
import signal
import sys

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, folder):
        self.folder = folder
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({
                "content_type": part.get_content_type(),
                "filename": part.get_filename(),
                "text": part.get_content() if part.get_content_maintype() == "text"
                else None,
                # Any other part's bytes (a compressed report), in base64.
                "data": None if part.get_content_maintype() == "text"
                else base64.b64encode(part.get_content()).decode("ascii"),
            })
        self.n += 1
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]),
            "parts": parts,
        }
        path = os.path.join(self.folder, f"{os.getpid()}-{self.n:05d}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        return "250 OK"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Keep(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
