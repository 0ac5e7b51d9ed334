# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of ghcr.io/openfaas/basic-auth-plugin:0.18.18 (OpenFaaS's basic-auth plugin), which cannot be
# pulled on the test rig. Written for onmetal.faas's tests; no OpenFaaS code is used.
# Implements the plugin's documented behaviour: any method on /validate compares the request's
# "Authorization: Basic" credentials with the files <secret_mount_path>/<user_filename> and
# <secret_mount_path>/<pass_filename> (defaults basic-auth-user, basic-auth-password) and answers
# 200 OK or 401 Unauthorized with a WWW-Authenticate challenge. Env: port (8080), secret_mount_path
# (/var/openfaas/secrets; the Swarm stack sets /run/secrets/), user_filename, pass_filename.
# /healthz answers 200 OK.
"""OpenFaaS basic-auth-plugin test double."""

import doublelib

COMPONENT = "basic-auth-plugin"


class AuthHandler(doublelib.Handler):
    component = COMPONENT
    mount_path = "/var/openfaas/secrets"
    user_file = "basic-auth-user"
    pass_file = "basic-auth-password"

    def dispatch(self):
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self.reply(200, "OK")
            return
        if path != "/validate":
            self.reply(404, "404 page not found\n")
            return
        self.read_body()
        try:
            user = doublelib.read_secret(self.mount_path, self.user_file)
            password = doublelib.read_secret(self.mount_path, self.pass_file)
        except doublelib.ConfigError as exc:
            doublelib.log(COMPONENT, str(exc))
            self.reply(500, f"{exc}\n")
            return
        if doublelib.credentials_match(self.headers.get("Authorization"), user, password):
            self.reply(200, "OK")
        else:
            self.reply(401, "Unauthorized\n", headers=[("WWW-Authenticate", 'Basic realm="Restricted"')])


def main():
    AuthHandler.mount_path = doublelib.env("secret_mount_path", AuthHandler.mount_path)
    AuthHandler.user_file = doublelib.env("user_filename", AuthHandler.user_file)
    AuthHandler.pass_file = doublelib.env("pass_filename", AuthHandler.pass_file)
    doublelib.serve(AuthHandler, 8080)


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
