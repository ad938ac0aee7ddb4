using System.Globalization;

namespace Lodestar.Diagnostics.Internal;

/// <summary>
/// The attribute names and values of OpenTelemetry's HTTP client semantic conventions that Lodestar's attempt span and
/// request and attempt instruments carry beside their <c>lodestar.*</c> tags.
/// </summary>
/// <remarks>
/// Values stay low-cardinality as the conventions ask: a method outside the registered set is <c>_OTHER</c> (its
/// original text goes to <c>http.request.method_original</c> on spans only); <c>error.type</c> is the status code for a
/// 4xx or 5xx response, else a short failure identifier (<c>connect_failure</c>, <c>no_endpoints</c>, ...), else the
/// <see cref="HttpRequestError"/> in snake case, as <c>System.Net.Http</c>'s own metrics name it, else the exception's
/// full type name.
/// </remarks>
internal static class HttpSemanticConventions
{
    public const string ServerAddress = "server.address";
    public const string ServerPort = "server.port";
    public const string ErrorType = "error.type";
    public const string ResendCount = "http.request.resend_count";
    public const string RequestMethod = "http.request.method";
    public const string RequestMethodOriginal = "http.request.method_original";
    public const string ResponseStatusCode = "http.response.status_code";
    public const string UrlScheme = "url.scheme";
    public const string OtherMethod = "_OTHER";

    // Boxed once: status codes and the well-known ports are tag values on every measurement.
    private static readonly object[] s_smallIntegers = CreateSmallIntegers();

    /// <summary>Returns the method as the conventions name it: one of the registered methods, or <c>_OTHER</c>.</summary>
    public static string Method(HttpMethod method) => method.Method switch
    {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        "QUERY" => "QUERY",
        _ => OtherMethod,
    };

    /// <summary>Returns <c>error.type</c> for a response status: the code as text from 400 on, else <see langword="null"/>.</summary>
    public static string? StatusErrorType(int status) => status >= 400 ? StatusText(status) : null;

    /// <summary>Returns <c>error.type</c> for an exception that has no Lodestar failure reason.</summary>
    public static string ExceptionErrorType(Exception exception) => exception switch
    {
        HttpRequestException { HttpRequestError: not HttpRequestError.Unknown } http => HttpRequestErrorName(http.HttpRequestError),
        _ => exception.GetType().FullName ?? OtherMethod,
    };

    /// <summary>Returns the integer boxed, from a cache for 0 to 1023 (status codes, well-known ports).</summary>
    public static object Box(int value) => (uint)value < (uint)s_smallIntegers.Length ? s_smallIntegers[value] : value;

    private static string StatusText(int status) => status switch
    {
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        408 => "408",
        409 => "409",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => status.ToString(CultureInfo.InvariantCulture),
    };

    private static string HttpRequestErrorName(HttpRequestError error) => error switch
    {
        HttpRequestError.NameResolutionError => "name_resolution_error",
        HttpRequestError.ConnectionError => "connection_error",
        HttpRequestError.SecureConnectionError => "secure_connection_error",
        HttpRequestError.HttpProtocolError => "http_protocol_error",
        HttpRequestError.ExtendedConnectNotSupported => "extended_connect_not_supported",
        HttpRequestError.VersionNegotiationError => "version_negotiation_error",
        HttpRequestError.UserAuthenticationError => "user_authentication_error",
        HttpRequestError.ProxyTunnelError => "proxy_tunnel_error",
        HttpRequestError.InvalidResponse => "invalid_response",
        HttpRequestError.ResponseEnded => "response_ended",
        HttpRequestError.ConfigurationLimitExceeded => "configuration_limit_exceeded",
        _ => "_OTHER",
    };

    private static object[] CreateSmallIntegers()
    {
        var values = new object[1024];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = i;
        }

        return values;
    }
}
