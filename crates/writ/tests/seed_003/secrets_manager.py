import boto3
import json
from functools import lru_cache
secrets_client = boto3.client('secretsmanager')
@lru_cache(maxsize=None)
def get_secret(secret_name: str) -> dict:
    response = secrets_client.get_secret_value(SecretId=secret_name)
    return json.loads(response['SecretString'])
def handler(event, context):
    # Fetched once per container, cached for subsequent invocations
    db_creds = get_secret('prod/orders-db')
    conn = connect(
        host=db_creds['host'],
        user=db_creds['username'],
        password=db_creds['password']
    )
