import boto3
from functools import lru_cache
ssm = boto3.client('ssm')
@lru_cache(maxsize=None)
def get_parameter(name: str) -> str:
    response = ssm.get_parameter(Name=name, WithDecryption=True)
    return response['Parameter']['Value']
def handler(event, context):
    api_endpoint = get_parameter('/prod/orders/api-endpoint')
    # lru_cache means this is fetched once per Lambda container lifetime
