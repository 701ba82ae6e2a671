# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every Elasticsearch module (module_utils/es_client.py).
    DOCUMENTATION = r"""
options:
  es_url:
    description:
      - Elasticsearch URL(s), for example C(https://es.internal:9200).
      - Falls back to the comma-separated environment variable E(ES_URL).
    type: list
    elements: str
  es_username:
    description:
      - User for HTTP basic authentication. Falls back to E(ES_USERNAME).
    type: str
  es_password:
    description:
      - Password for O(es_username). Falls back to E(ES_PASSWORD). Keep it in Ansible Vault.
    type: str
  es_api_key:
    description:
      - API key, either C(id:key) or the base64 encoded form. Falls back to E(ES_API_KEY).
      - Mutually exclusive with O(es_username).
    type: str
  es_ca_file:
    description:
      - PEM file with the CA that signed the cluster's HTTP certificate. Falls back to E(ES_CA_FILE).
    type: path
  es_validate_certs:
    description:
      - Verify the server's TLS certificate. Only turn this off for throw-away test clusters.
    type: bool
    default: true
  es_timeout:
    description:
      - Seconds to wait for one HTTP request.
    type: int
    default: 30
  es_max_retries:
    description:
      - Retries of one request on connection errors and on HTTP 502, 503 and 504.
    type: int
    default: 3
notes:
  - Works against Elasticsearch 7.17, 8.x, 9.x and OpenSearch; requests use plain C(application/json).
requirements:
  - elasticsearch (its elastic-transport package) on the host that runs the module
"""
