# Azure Functions (Python 3.11) image serving the exported champion with ONNX Runtime.
FROM mcr.microsoft.com/azure-functions/python:4-python3.11

ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Serving dependencies only (no training stack); a layer of its own so code changes rebuild fast.
COPY requirements.txt /
RUN pip install --no-cache-dir -r /requirements.txt

COPY host.json function_app.py /home/site/wwwroot/
COPY tweet_sentiment /home/site/wwwroot/tweet_sentiment
COPY models /home/site/wwwroot/models
