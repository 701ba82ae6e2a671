# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # AWS options shared by the modules that talk to EC2 / Auto Scaling (module_utils/aws.py).
    DOCUMENTATION = r"""
options:
  region:
    description:
      - AWS region. Falls back to E(AWS_REGION) or E(AWS_DEFAULT_REGION).
    type: str
    aliases: [aws_region]
  profile:
    description:
      - AWS profile from the shared configuration files. Falls back to E(AWS_PROFILE).
    type: str
    aliases: [aws_profile]
  endpoint_url:
    description:
      - AWS endpoint URL, for example a moto server. Falls back to E(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
  aws_retry_mode:
    description:
      - botocore retry mode; V(adaptive) also rate-limits the client when AWS throttles.
    type: str
    default: adaptive
    choices: [standard, adaptive, legacy]
  aws_max_attempts:
    description:
      - Attempts per AWS call, throttling and transient errors included.
    type: int
    default: 10
requirements:
  - boto3 and botocore on the host that runs the module
"""
