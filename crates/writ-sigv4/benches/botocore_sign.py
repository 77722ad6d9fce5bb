"""botocore signing the request benches/verify.rs verifies, for the ratio in BENCHMARKS.md.

Prints the median time of one SigV4Auth.add_auth (fresh request each time, as a client signs
each call) over 7 runs, in microseconds.
"""

import json
import timeit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEJr//////////wEaDExampleSessionToken+/=")
auth = SigV4Auth(creds, "secretsmanager", "us-east-1")
body = json.dumps({"SecretId": "prod/orders-db", "VersionStage": "AWSCURRENT"}).encode()


def sign():
    r = AWSRequest(
        method="POST",
        url="https://secretsmanager.us-east-1.amazonaws.com/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            "User-Agent": "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.11.7",
            "Content-Length": str(len(body)),
        },
    )
    auth.add_auth(r)


n = 2000
runs = sorted(timeit.repeat(sign, number=n, repeat=7))
print("%.2f" % (runs[3] / n * 1e6))
