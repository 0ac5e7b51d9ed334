# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of ghcr.io/openfaas/basic-auth-plugin:0.18.18 (OpenFaaS's basic-auth plugin), which cannot be
# pulled on the test rig. Written for onmetal.faas's tests; no OpenFaaS code is used.
# Upstream = openfaas/faas at 11ff356c, auth/basic-auth/main.go ("ba/") and the vendored faas-provider auth package:
#   start-up: credentials are read ONCE from <secret_mount_path>/<user_filename|basic-auth-user> and
#             <pass_filename|basic-auth-password> (whitespace trimmed); unreadable -> panic, exit 2 (ba/main.go:34-43)
#   /validate (any method): 200, or 401 "invalid credentials"; WWW-Authenticate: Basic realm="Restricted" on both
#             (faas-provider auth/basic_auth.go:11-21)
#   /health: 200 (ba/main.go:49-51); anything else 404 (Go's ServeMux). Env: port (8080).
"""OpenFaaS basic-auth-plugin test double."""

import doublelib

COMPONENT = "basic-auth-plugin"
CHALLENGE = ("WWW-Authenticate", 'Basic realm="Restricted"')


class AuthHandler(doublelib.Handler):
    component = COMPONENT
    credentials = None

    def dispatch(self):
        path = self.path.split("?", 1)[0]
        self.read_body()
        if path == "/health":
            self.reply(200, "")
        elif path == "/validate":
            ok = doublelib.credentials_match(self.headers.get("Authorization"), *self.credentials)
            doublelib.log(COMPONENT, f"Validated request {200 if ok else 401}.")
            if ok:
                self.reply(200, "", headers=[CHALLENGE])
            else:
                self.reply(401, "invalid credentials", headers=[CHALLENGE])
        else:
            self.reply(404, "404 page not found\n")


def main():
    mount = doublelib.env("secret_mount_path")
    if not mount:  # faas-provider auth/credentials.go:34-36
        doublelib.fatal(
            COMPONENT,
            "unable to read basic auth credentials, check `secret_mount_path`: "
            "invalid SecretMountPath specified for reading secrets",
            code=2,
        )
    user_file = doublelib.env("user_filename", "basic-auth-user")
    pass_file = doublelib.env("pass_filename", "basic-auth-password")
    try:
        AuthHandler.credentials = (doublelib.read_secret(mount, user_file), doublelib.read_secret(mount, pass_file))
    except doublelib.ConfigError as exc:
        doublelib.fatal(COMPONENT, f"unable to read basic auth credentials, check `secret_mount_path`: {exc}", code=2)
    doublelib.serve(AuthHandler, 8080)


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
