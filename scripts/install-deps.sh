#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Licentia builds with (libxmlsec1 and libclang for
# SAML single sign-on, samael, which generates its bindings with bindgen) (and, with --postgres, the
# PostgreSQL server the tests may start; with --test, Python's venv for the tests' SMTP
# server and SOAP client, xmllint, libfaketime for a node whose clock runs ahead, Debian's
# Chromium with a font for the portal's browser tests, SimpleSAMLphp with PHP's command line
# (its built-in web server) as the identity provider of the single sign-on tests, PHP's SOAP
# extension and gSOAP (wsdl2h, soapcpp2 and its library) for the SOAP client tests, and Node.js with npm where there is no `node` yet). Installs only what is missing.
set -euo pipefail
pkgs=(build-essential pkg-config libssl-dev libpq-dev libxmlsec1-dev libclang-dev)
for flag in "$@"; do
  case "$flag" in
    --postgres) pkgs+=(postgresql) ;;
    --test)
      pkgs+=(python3 python3-venv libxml2-utils libfaketime chromium fonts-dejavu-core
        simplesamlphp php-cli php-xml php-soap gsoap libgsoap-dev)
      # A machine may bring its own Node.js (not from a Debian package): keep it.
      command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
      ;;
    *) echo "unknown flag $flag" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
