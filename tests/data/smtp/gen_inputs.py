#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes the golden transcript inputs <name>.in (raw client bytes; 0x1E separates the
# client's writes). The expected server output is <name>.ref; regenerate it with
#   SALVO_UPDATE_GOLDEN=1 build/unit_smtp --gtest_filter='Golden*'
# and review the diff by hand.
import os

SEP = b"\x1e"
here = os.path.dirname(os.path.abspath(__file__))


def w(*parts):
    return SEP.join(p.encode("latin-1") if isinstance(p, str) else p for p in parts)


T = {}
T["basic"] = w("EHLO client.test\r\n", "MAIL FROM:<alice@example.org>\r\n",
               "RCPT TO:<bob@example.com>\r\n", "DATA\r\n",
               "Subject: hello\r\n\r\nHi Bob.\r\n.\r\n", "QUIT\r\n")
T["pipelined"] = w("EHLO client.test\r\n",
                   "MAIL FROM:<alice@example.org> SIZE=40 BODY=8BITMIME\r\n"
                   "RCPT TO:<b1@example.com> NOTIFY=SUCCESS,FAILURE\r\n"
                   "RCPT TO:<b2@example.com> ORCPT=rfc822;b2@example.com\r\n"
                   "RCPT TO:<b3@example.com>\r\nDATA\r\n",
                   "Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<>\r\n"
                   "RCPT TO:<b1@example.com>\r\nDATA\r\n",
                   "second\r\n.\r\nQUIT\r\n")
T["helo"] = w("HELO client.test\r\n", "MAIL FROM:<a@example.org> SIZE=10\r\n",
              "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.com>\r\n", "DATA\r\n",
              "x\r\n.\r\n", "QUIT\r\n")
T["dot_stuffing"] = w("EHLO c\r\n", "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
                      "..\r\n...\r\n.leading\r\nmid.dle\r\n..\r\n.\r\n", "QUIT\r\n")
T["smuggling"] = w("EHLO c\r\n", "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
                   "Subject: x\r\n\r\nhello\n.\nMAIL FROM:<ceo@bank.example>\r\n"
                   "RCPT TO:<victim@example.com>\r\nDATA\r\nspoofed\r\n.\r\n",
                   "NOOP\r\n", "QUIT\r\n")
T["sync_violation"] = w("EHLO c\r\n",
                        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
                        "Subject: too early\r\n\r\nx\r\n.\r\n", "NOOP\r\n")
T["bad_sequence"] = w("MAIL FROM:<a@example.org>\r\n", "EHLO c\r\n", "RCPT TO:<b@example.com>\r\n",
                      "DATA\r\n", "MAIL FROM:<a@example.org>\r\n", "MAIL FROM:<a@example.org>\r\n",
                      "DATA\r\n", "FROB\r\n", "VRFY root\r\n", "EXPN list\r\n", "RSET\r\n",
                      "HELP\r\n", "QUIT\r\n")
T["error_limit"] = w("EHLO c\r\n", "".join("garbage %d\r\n" % i for i in range(25)))
T["starttls_injection"] = w("EHLO c\r\n", "STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n",
                            "MAIL FROM:<a@example.org>\r\n", "EHLO c\r\n", "STARTTLS\r\n",
                            "QUIT\r\n")
T["auth"] = w("EHLO c\r\n", "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n", "STARTTLS\r\n", "EHLO c\r\n",
              "AUTH PLAIN !!!\r\n", "AUTH LOGIN\r\n", "*\r\n", "AUTH PLAIN\r\n",
              "AHVzZXIAd3Jvbmc=\r\n", "AUTH LOGIN dXNlcg==\r\n", "c2VjcmV0\r\n",
              "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n", "QUIT\r\n")
T["bdat"] = w("EHLO c\r\n", "BDAT 12 LAST\r\nMAIL FROM:<>", "NOOP\r\n",
              "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 7\r\nline 1\n",
              "BDAT 0\r\n", "DATA\r\n", "BDAT 10 LAST\r\n\r\n.\r\nend\r\n",
              "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 14 LAST\r\n"
              "Subject: x\r\n\r\n", "QUIT\r\n")
T["params"] = w("EHLO c\r\n", "MAIL FROM:<a@example.org> SIZE=99999999999999999999999\r\n",
                "MAIL FROM:<a@example.org> SIZE=1 SIZE=2\r\n", "MAIL FROM:<a@example.org> FOO=bar\r\n",
                "MAIL FROM:<a@example.org> ENVID=+ZZ\r\n",
                "MAIL FROM:<j\xc3\xb6rg@example.org>\r\n",
                "MAIL FROM:<j\xc3\xb6rg@example.org> SMTPUTF8 ENVID=x+2By RET=FULL\r\n",
                "RCPT TO:<b@example.com> NOTIFY=NEVER,DELAY\r\n",
                "RCPT TO:<b@example.com> NOTIFY=DELAY ORCPT=utf-8;b@example.com\r\n",
                "RCPT TO:<\"quoted local\"@[192.0.2.1]>\r\n", "RCPT TO:<x@[IPv6:2001:db8::1]>\r\n",
                "RCPT TO:<bad..dots@example.com>\r\n", "QUIT\r\n")
T["long_lines"] = w("EHLO c\r\n", "NOOP " + "x" * 505 + "\r\n", "NOOP " + "x" * 506 + "\r\n",
                    "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
                    "x" * 998 + "\r\n.\r\n",
                    "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
                    "x" * 999 + "\r\n.\r\n", "y" * 70000, "\r\nQUIT\r\n")
T["recipients"] = w("EHLO c\r\n", "MAIL FROM:<a@example.org>\r\n" +
                    "".join("RCPT TO:<r%d@example.com>\r\n" % i for i in range(7)) +
                    "RCPT TO:<x@relay.test>\r\nDATA\r\n", "hi\r\n.\r\n", "QUIT\r\n")
T["nul_and_bare_cr"] = w("EHLO c\r\n", b"NOOP\x00\r\n",
                         "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
                         b"a\x00b\r\n.\r\n",
                         "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
                         "a\rb\r\n.\r\n", "QUIT\r\n")

for name, data in T.items():
    with open(os.path.join(here, name + ".in"), "wb") as f:
        f.write(data)
print("wrote", len(T), "inputs")
