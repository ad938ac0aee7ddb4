using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Lodestar.Discovery;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// A lean client for one cluster: one shared <see cref="HttpClient"/>, bearer token or client certificate, the
/// cluster's CA, gzip, a token-bucket limiter for non-watch requests, size-capped reads, and errors that name the cluster
/// but never a credential.
/// </summary>
/// <remarks>
/// Every piece of text that came from the server (a Status message, a reason phrase, a continue token in a path, a
/// certificate subject, a transport error) passes through <see cref="Redactor"/> before it reaches a message or a log:
/// an API server or a proxy in front of it may echo the request's Authorization header back.
/// </remarks>
internal sealed partial class KubernetesApiClient : IDisposable
{
    /// <summary>The deadline of one non-watch request.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The most bytes of an error answer read for its Status message; a longer body is not read.</summary>
    internal const int MaxErrorBodyBytes = 64 * 1024;

    /// <summary>The media type of the JSON encoding.</summary>
    public const string JsonMediaType = "application/json";

    private readonly Lock _clientGate = new();
    private readonly TokenBucket _limiter;
    private readonly BearerTokenSource _tokens;
    private readonly ExecCredentialPlugin? _exec;
    private volatile HttpClient _http;
    private HttpClient? _retired;
    private X509Certificate2? _execCertificate;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private volatile string? _lastTlsProblem;

    public KubernetesApiClient(ClusterConfig config, double qps, int burst, TimeSpan tokenRefreshInterval, TimeProvider timeProvider, ILogger logger)
    {
        Config = config;
        _timeProvider = timeProvider;
        _logger = logger;
        _limiter = new TokenBucket(qps, burst, timeProvider);
        Redactor = new SecretRedactor().Add([.. config.Secrets]);
        _tokens = new BearerTokenSource(config, tokenRefreshInterval, timeProvider, logger, Redactor);
        _exec = config.Exec is { } exec ? new ExecCredentialPlugin(exec, config.DisplayName, Redactor, timeProvider, logger) : null;
        _http = CreateHttpClient(config.ClientCertificate);
    }

    public ClusterConfig Config { get; }

    /// <summary>Gets the redactor of this cluster's secrets: the configured token and client key, and every token read since.</summary>
    public SecretRedactor Redactor { get; }

    private HttpClient CreateHttpClient(X509Certificate2? clientCertificate)
    {
        var config = Config;
        var handler = new SocketsHttpHandler
        {
            AutomaticDecompression = DecompressionMethods.GZip,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(15),
            UseCookies = false,
            UseProxy = false,
        };
        handler.SslOptions.RemoteCertificateValidationCallback = ValidateServerCertificate;
        if (clientCertificate is { } certificate)
        {
            handler.SslOptions.ClientCertificates = new X509CertificateCollection { certificate };
        }

        var http = new HttpClient(handler, disposeHandler: true) { BaseAddress = config.Server, Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("lodestar", "0.1"));
        if (config.TlsServerName is { } serverName && config.Server.Scheme == Uri.UriSchemeHttps)
        {
            // SocketsHttpHandler takes the TLS target host (SNI and the certificate name check) from the Host header,
            // so naming the server there is what makes the handshake ask for and accept tls-server-name.
            var host = Uri.CheckHostName(serverName) == UriHostNameType.IPv6 && !serverName.StartsWith('[') ? $"[{serverName}]" : serverName;
            http.DefaultRequestHeaders.Host = config.Server.IsDefaultPort ? host : string.Create(CultureInfo.InvariantCulture, $"{host}:{config.Server.Port}");
        }

        return http;
    }

    /// <summary>
    /// Makes new connections present the exec plugin's current client certificate. Pooled connections keep the
    /// certificate of their handshake, so a new certificate gets a new client; the one before is disposed at the next
    /// change (its watches have ended or broken by then) or with this client.
    /// </summary>
    private HttpClient UseExecCertificate(X509Certificate2 certificate)
    {
        HttpClient? dispose = null;
        lock (_clientGate)
        {
            if (ReferenceEquals(certificate, _execCertificate))
            {
                return _http;
            }

            _execCertificate = certificate;
            dispose = _retired;
            _retired = _http;
            _http = CreateHttpClient(certificate);
        }

        dispose?.Dispose();
        return _http;
    }

    /// <summary>Returns <paramref name="text"/> without this cluster's secrets or any recognisable credential.</summary>
    public string Redact(string? text) => Redactor.Redact(text) ?? "";

    /// <summary>
    /// Returns <paramref name="error"/> when no message along its chain holds a secret, else an exception carrying only
    /// the redacted message: an inner exception is written out whole by loggers, so it must be as clean as the outer one.
    /// </summary>
    public Exception? Sanitize(Exception? error)
    {
        for (var current = error; current is not null; current = current.InnerException)
        {
            if (!string.Equals(Redact(current.Message), current.Message, StringComparison.Ordinal))
            {
                return new KubernetesApiException(Redact(error!.Message)) { Server = Config.Server };
            }
        }

        return error;
    }

    /// <summary>Returns the Accept header that asks for <paramref name="encoding"/>.</summary>
    public static string Accept(KubernetesEncoding encoding) => encoding switch
    {
        KubernetesEncoding.Protobuf => KubernetesProtobuf.MediaType,
        KubernetesEncoding.Json => JsonMediaType,
        _ => KubernetesProtobuf.MediaType + ", " + JsonMediaType,
    };

    /// <summary>
    /// LISTs EndpointSlices in <paramref name="encoding"/> through the client-side limiter, reading at most
    /// <paramref name="maxBytes"/>, and decodes the answer in the encoding the server chose.
    /// </summary>
    /// <exception cref="KubernetesApiException">The request failed; <see cref="KubernetesApiException.StatusCode"/> says how.</exception>
    public Task<EndpointSliceList> ListAsync(string pathAndQuery, KubernetesEncoding encoding, long maxBytes, CancellationToken cancellationToken)
        => GetAsync(pathAndQuery, Accept(encoding), maxBytes, static async (stream, mediaType, token) =>
        {
            if (KubernetesProtobuf.IsProtobuf(mediaType))
            {
                using var buffer = new MemoryStream();
                await stream.CopyToAsync(buffer, token).ConfigureAwait(false);
                return KubernetesProtobuf.DecodeList(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
            }

            return await JsonSerializer.DeserializeAsync(stream, KubernetesJsonContext.Default.EndpointSliceList, token).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>GETs and decodes a resource or list as JSON, through the client-side limiter, reading at most <paramref name="maxBytes"/>.</summary>
    /// <exception cref="KubernetesApiException">The request failed; <see cref="KubernetesApiException.StatusCode"/> says how.</exception>
    public Task<T> GetAsync<T>(string pathAndQuery, JsonTypeInfo<T> typeInfo, long maxBytes, CancellationToken cancellationToken)
        => GetAsync(pathAndQuery, JsonMediaType, maxBytes, async (stream, _, token) => await JsonSerializer.DeserializeAsync(stream, typeInfo, token).ConfigureAwait(false), cancellationToken);

    private async Task<T> GetAsync<T>(string pathAndQuery, string accept, long maxBytes, Func<Stream, string?, CancellationToken, ValueTask<T?>> decode,
        CancellationToken cancellationToken)
    {
        await _limiter.AcquireAsync(cancellationToken).ConfigureAwait(false);
        if (_exec is not null)
        {
            // An exec plugin has its own, longer bound: a slow plugin must not spend the API server's request deadline
            // (nor be reported as the server not answering).
            await _exec.GetAsync(cancellationToken).ConfigureAwait(false);
        }

        using var deadline = new CancellationTokenSource(RequestTimeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var request = "GET " + Redact(pathAndQuery);
        try
        {
            using var response = await SendAsync(pathAndQuery, accept, linked.Token).ConfigureAwait(false);
            await EnsureSuccessAsync(response, pathAndQuery, linked.Token).ConfigureAwait(false);
            var description = $"{Config.DisplayName}, {request}";
            if (response.Content.Headers.ContentLength is { } length && length > maxBytes)
            {
                throw TooLarge(new RegistryResponseTooLargeException(
                    string.Create(CultureInfo.InvariantCulture, $"{description}: the answer is larger than the limit of {maxBytes} bytes (Content-Length {length}); it was not read."))
                {
                    Limit = maxBytes,
                });
            }

            var mediaType = MediaTypeOf(response, request);
            var stream = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                // The limit counts decompressed bytes, so a small gzip body cannot expand without bound either.
                using var limited = RegistryStreams.Limit(stream, maxBytes, description);
                return await decode(limited, mediaType, linked.Token).ConfigureAwait(false)
                       ?? throw new KubernetesApiException($"{Config.DisplayName} answered {request} with an empty body.") { Server = Config.Server };
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new KubernetesApiException($"{Config.DisplayName} did not answer {request} within {RequestTimeout.TotalSeconds} s.") { Server = Config.Server };
        }
        catch (RegistryResponseTooLargeException ex)
        {
            throw TooLarge(ex);
        }
        catch (JsonException ex)
        {
            throw new KubernetesApiException(Redact($"{Config.DisplayName} answered {request} with malformed JSON: {ex.Message}"), Sanitize(ex)) { Server = Config.Server };
        }
        catch (InvalidDataException ex)
        {
            throw new KubernetesApiException(Redact($"{Config.DisplayName} answered {request} with unreadable protobuf: {ex.Message}."), Sanitize(ex)) { Server = Config.Server };
        }
        catch (IOException ex)
        {
            throw new KubernetesApiException(Redact($"The connection to {Config.DisplayName} broke while reading {request}: {ex.Message}"), Sanitize(ex)) { Server = Config.Server };
        }

        KubernetesApiException TooLarge(RegistryResponseTooLargeException ex)
            => new(Redact(ex.Message) + " Raise Lodestar:Kubernetes:MaxListResponseBytes or lower PageSize if the service is really this large.", Sanitize(ex))
            {
                Server = Config.Server,
            };
    }

    /// <summary>
    /// Returns the media type of a successful answer: protobuf or JSON (also assumed when none is given).
    /// </summary>
    /// <exception cref="KubernetesApiException">The answer is in another media type.</exception>
    public string? MediaTypeOf(HttpResponseMessage response, string request)
    {
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is null || KubernetesProtobuf.IsProtobuf(mediaType) || string.Equals(mediaType, JsonMediaType, StringComparison.OrdinalIgnoreCase))
        {
            return mediaType;
        }

        throw new KubernetesApiException(Redact($"{Config.DisplayName} answered {request} with content type '{Truncate(mediaType, 128)}'; Lodestar reads {KubernetesProtobuf.MediaType} and {JsonMediaType}."))
        {
            Server = Config.Server,
        };
    }

    /// <summary>Starts a watch and returns its open response; the body is read line by line by the caller.</summary>
    /// <exception cref="KubernetesApiException">The watch could not start (410 Gone included).</exception>
    public async Task<HttpResponseMessage> WatchAsync(string pathAndQuery, KubernetesEncoding encoding, CancellationToken cancellationToken)
    {
        var response = await SendAsync(pathAndQuery, Accept(encoding), cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureSuccessAsync(response, pathAndQuery, cancellationToken).ConfigureAwait(false);
            return response;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        lock (_clientGate)
        {
            _http.Dispose();
            _retired?.Dispose();
        }

        _exec?.Dispose();
    }

    private async Task<HttpResponseMessage> SendAsync(string pathAndQuery, string accept, CancellationToken cancellationToken)
    {
        // With an exec plugin, a 401 means the credential it gave was revoked or expired early: as client-go does, the
        // plugin runs again and the request is sent once more with what it gives.
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, pathAndQuery);
            request.Headers.TryAddWithoutValidation("Accept", accept);
            var http = _http;
            ExecCredential? credential = null;
            if (_exec is not null)
            {
                credential = await _exec.GetAsync(cancellationToken).ConfigureAwait(false);
                if (credential.Token is { } execToken)
                {
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", execToken);
                }

                if (credential.Certificate is { } certificate)
                {
                    http = UseExecCertificate(certificate);
                }
            }
            else if (_tokens.GetToken() is { } token)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            var response = await SendOnceAsync(http, request, pathAndQuery, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.Unauthorized && credential is not null && attempt == 0)
            {
                response.Dispose();
                _exec!.Invalidate(credential);
                continue;
            }

            return response;
        }
    }

    private async Task<HttpResponseMessage> SendOnceAsync(HttpClient http, HttpRequestMessage request, string pathAndQuery, CancellationToken cancellationToken)
    {
        try
        {
            var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                Log.Response(_logger, Redact(pathAndQuery), (int)response.StatusCode, Config.DisplayName);
            }

            return response;
        }
        catch (HttpRequestException ex) when (FindInner<AuthenticationException>(ex) is not null)
        {
            var problem = _lastTlsProblem ?? ex.Message;
            throw new KubernetesApiException(
                Redact($"The TLS connection to {Config.DisplayName} failed: {problem}. Check the cluster's certificate-authority (or ca.crt in a pod)."), Sanitize(ex))
            {
                Server = Config.Server,
            };
        }
        catch (HttpRequestException ex)
        {
            throw new KubernetesApiException(Redact($"Cannot reach {Config.DisplayName}: {ex.Message}"), Sanitize(ex)) { Server = Config.Server };
        }
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, string pathAndQuery, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var status = await ReadStatusAsync(response, cancellationToken).ConfigureAwait(false);
        var code = response.StatusCode;
        var detail = string.IsNullOrEmpty(status?.Message) ? "" : ": " + Truncate(status.Message);
        var message = code switch
        {
            HttpStatusCode.Unauthorized =>
                $"{Config.DisplayName} rejected the credentials (401 Unauthorized): the bearer token or client certificate was not accepted; it may be wrong, expired or rotated.",
            HttpStatusCode.Forbidden =>
                $"{Config.DisplayName} forbids GET {pathAndQuery} (403 Forbidden){detail}. Grant get, list and watch on endpointslices in discovery.k8s.io.",
            HttpStatusCode.Gone =>
                $"{Config.DisplayName} answered 410 Gone to GET {pathAndQuery}: the resource version is too old{detail}.",
            _ => $"{Config.DisplayName} answered {(int)code} {Truncate(response.ReasonPhrase)} to GET {pathAndQuery}{detail}",
        };

        // The Status message, the reason phrase and the path's continue token all came from the server.
        throw new KubernetesApiException(Redact(message)) { StatusCode = code, Server = Config.Server };
    }

    /// <summary>Shortens server text for a message: a proxy's error page should not become a page-long exception.</summary>
    internal static string Truncate(string? text, int max = 1024)
        => text is null ? "" : text.Length <= max ? text : string.Concat(text.AsSpan(0, max), "…");

    private async Task<ApiStatus?> ReadStatusAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            // An error answer is read only up to a small cap: a server answering 500 with a gigabyte must not make the
            // client buffer it to find a message.
            var bytes = await RegistryStreams.ReadAsync(response.Content, MaxErrorBodyBytes, Config.DisplayName, cancellationToken).ConfigureAwait(false);
            if (KubernetesProtobuf.HasMagic(bytes))
            {
                // Asked for protobuf, the API server sends its Status in protobuf too.
                return KubernetesProtobuf.DecodeStatus(bytes);
            }

            return bytes.Length > 0 ? JsonSerializer.Deserialize(bytes, KubernetesJsonContext.Default.ApiStatus) : null;
        }
        catch (Exception ex) when (ex is JsonException or IOException or HttpRequestException)
        {
            // The status code already tells what happened; a body that is not a Status (or is too long) adds nothing.
            return null;
        }
    }

    private bool ValidateServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (Config.InsecureSkipTlsVerify)
        {
            return true;
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            _lastTlsProblem = Config.TlsServerName is null
                ? $"the server certificate does not name host '{Config.Server.Host}' (set the cluster's tls-server-name when it is issued for another name)"
                : $"the server certificate does not name '{Config.TlsServerName}', the cluster's tls-server-name";
            return false;
        }

        if (Config.CertificateAuthorities is not { } authorities)
        {
            if (errors == SslPolicyErrors.None)
            {
                return true;
            }

            _lastTlsProblem = $"the server certificate is not trusted by the system's certificate authorities ({errors})";
            return false;
        }

        if (certificate is null)
        {
            _lastTlsProblem = "the server sent no certificate";
            return false;
        }

        // As client-go does, a configured CA replaces the system's trust store rather than adding to it.
        using var server = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(authorities);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        if (custom.Build(server))
        {
            return true;
        }

        var statuses = string.Join(", ", custom.ChainStatus.Select(s => s.Status.ToString()).Distinct());
        _lastTlsProblem = $"the server certificate '{server.Subject}' is not signed by the configured certificate authority ({statuses})";
        return false;
    }

    private static T? FindInner<T>(Exception exception)
        where T : Exception
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            if (current is T found)
            {
                return found;
            }
        }

        return null;
    }

    private static partial class Log
    {
        [LoggerMessage(110, LogLevel.Debug, "GET {Path} answered {Status} by {Cluster}.", EventName = "ApiResponse")]
        public static partial void Response(ILogger logger, string path, int status, string cluster);
    }
}
