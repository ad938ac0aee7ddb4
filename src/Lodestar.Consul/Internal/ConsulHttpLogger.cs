using Lodestar.Discovery;
using Microsoft.Extensions.Http.Logging;
using Microsoft.Extensions.Logging;

namespace Lodestar.Consul.Internal;

/// <summary>
/// Logs the Consul client's requests in place of <see cref="IHttpClientFactory"/>'s default loggers, through the
/// redactor: the default failure log writes the transport exception whole, and its message may quote what the agent
/// sent, the ACL token included (a malformed header line is quoted verbatim).
/// </summary>
internal sealed partial class ConsulHttpLogger : IHttpClientLogger
{
    private readonly ILogger _logger;
    private readonly ConsulApi _api;

    public ConsulHttpLogger(ILogger logger, ConsulApi api)
    {
        _logger = logger;
        _api = api;
    }

    // Read per message: it masks the token the options hold now (and every one before).
    private SecretRedactor Redactor => _api.Redactor;

    public object? LogRequestStart(HttpRequestMessage request)
    {
        if (_logger.IsEnabled(LogLevel.Trace))
        {
            Log.RequestStarted(_logger, request.Method.Method, Describe(request));
        }

        return null;
    }

    public void LogRequestStop(object? context, HttpRequestMessage request, HttpResponseMessage response, TimeSpan elapsed)
    {
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            Log.RequestEnded(_logger, request.Method.Method, Describe(request), (int)response.StatusCode, elapsed.TotalMilliseconds);
        }
    }

    public void LogRequestFailed(object? context, HttpRequestMessage request, HttpResponseMessage? response, Exception exception, TimeSpan elapsed)
    {
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            // The message only, redacted: the exception itself may quote the token, in this message or an inner one.
            Log.RequestFailed(_logger, request.Method.Method, Describe(request), elapsed.TotalMilliseconds, exception.GetType().Name, Redactor.Redact(exception.Message)!);
        }
    }

    private string Describe(HttpRequestMessage request)
        => Redactor.Redact(request.RequestUri?.GetComponents(UriComponents.SchemeAndServer | UriComponents.PathAndQuery, UriFormat.UriEscaped)) ?? string.Empty;

    private static partial class Log
    {
        [LoggerMessage(20, LogLevel.Trace, "Consul request {Method} {Uri} started.", EventName = "ConsulRequestStarted")]
        public static partial void RequestStarted(ILogger logger, string method, string uri);

        [LoggerMessage(21, LogLevel.Debug, "Consul request {Method} {Uri} answered {StatusCode} after {ElapsedMs:0.#} ms.", EventName = "ConsulRequestEnded")]
        public static partial void RequestEnded(ILogger logger, string method, string uri, int statusCode, double elapsedMs);

        [LoggerMessage(22, LogLevel.Debug, "Consul request {Method} {Uri} failed after {ElapsedMs:0.#} ms: {ErrorType}: {Error}", EventName = "ConsulRequestFailed")]
        public static partial void RequestFailed(ILogger logger, string method, string uri, double elapsedMs, string errorType, string error);
    }
}
