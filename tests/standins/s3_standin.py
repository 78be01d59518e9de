"""A stand-in S3 service for the off-site tests: moto's server mode on 127.0.0.1 (never shipped).

moto speaks the S3 REST API over real HTTP, so rclone's multipart uploads,
listings and deletes go over the wire as they would to a real provider. With
`auth=True`, moto checks signatures against the access keys it created
(INITIAL_NO_AUTH_ACTION_COUNT lets the set-up calls through first), so wrong
credentials fail as they do on AWS (403 InvalidAccessKeyId).
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_standin(tmp, auth=False):
    port = free_port()
    env = dict(os.environ, MOTO_ALLOW_NONEXISTENT_REGION="true")
    setup_calls = 4
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(setup_calls)
    moto = Path(sys.executable).with_name("moto_server")
    log = open(Path(tmp) / "moto.log", "wb")
    p = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                         env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError("the moto S3 stand-in did not start; see " + str(Path(tmp) / "moto.log"))
                time.sleep(0.1)
        keys = ("testing-key", "testing-secret")
        if auth:
            import boto3

            iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                               aws_access_key_id="x", aws_secret_access_key="x")
            iam.create_user(UserName="dbrs")
            k = iam.create_access_key(UserName="dbrs")["AccessKey"]
            iam.put_user_policy(UserName="dbrs", PolicyName="all", PolicyDocument=(
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'))
            keys = (k["AccessKeyId"], k["SecretAccessKey"])
            # the fourth free call: make the bucket
        client = client_for(url, keys)
        client.create_bucket(Bucket="dbrs-offsite")
        yield url, keys, client
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def client_for(url, keys):
    import boto3

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=keys[0], aws_secret_access_key=keys[1])
