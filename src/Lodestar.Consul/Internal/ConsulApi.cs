using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Lodestar.Discovery;
using Lodestar.Internal;
using Microsoft.Extensions.Options;

namespace Lodestar.Consul.Internal;

/// <summary>
/// The few Consul HTTP API calls Lodestar makes, over one named <see cref="IHttpClientFactory"/> client. Adds the ACL
/// token header, the <c>dc</c>/<c>ns</c>/<c>partition</c> parameters and timeouts, reads answers with a bound on their
/// size, and turns every failure into a <see cref="ConsulException"/> that names the agent and never the token.
/// </summary>
/// <remarks>
/// Every text that came from the agent (error bodies, headers, transport errors that quote what the agent sent) passes
/// through <see cref="Redactor"/> before it reaches a message, and an underlying exception is attached only when its
/// own text holds no secret: an agent, or a proxy in front of it, may echo the request and its token.
/// </remarks>
internal sealed class ConsulApi
{
    public const string HttpClientName = "Lodestar.Consul";

    private const string IndexHeader = "X-Consul-Index";
    private const string TokenHeader = "X-Consul-Token";

    // Error bodies are read this far, redacted, then cut to MaxBodyInError characters: a hostile agent's 10 MB error page
    // costs 4 KB, and a secret that straddles the read limit lies beyond the part that is kept.
    private const int MaxErrorBodyBytes = 4096;
    private const int MaxBodyInError = 256;

    private readonly IHttpClientFactory _httpClientFactory;
    private readonly IOptionsMonitor<ConsulOptions> _options;
    private readonly SecretRedactor _redactor = new();
    private string? _redactedToken;

    public ConsulApi(IHttpClientFactory httpClientFactory, IOptionsMonitor<ConsulOptions> options)
    {
        _httpClientFactory = httpClientFactory;
        _options = options;
    }

    public ConsulOptions Options => _options.CurrentValue;

    /// <summary>Gets the agent address as shown in messages (no user info).</summary>
    public string DisplayAddress => DisplayOf(BaseUri(Options));

    /// <summary>Gets the redactor that masks the ACL token (every token seen so far) and recognisable credentials.</summary>
    public SecretRedactor Redactor
    {
        get
        {
            var token = Options.Token;
            if (!ReferenceEquals(token, Volatile.Read(ref _redactedToken)))
            {
                // A changed token (options reloaded) is added beside the old one, which stays masked.
                _redactor.Add(token);
                Volatile.Write(ref _redactedToken, token);
            }

            return _redactor;
        }
    }

    /// <summary>
    /// <c>GET /v1/health/service/:service</c>: a blocking query when <paramref name="index"/> is 1 or more, else an
    /// immediate read bounded by <see cref="ConsulOptions.RequestTimeout"/>. The caller bounds a blocking query (the
    /// source ends one that outlives its wait as stalled). The answer is read with a bound on its size
    /// (<see cref="HealthAnswerReader"/>) and its entries handed to <paramref name="onEntry"/> with their position; an
    /// entry that is <see langword="null"/> or of the wrong shape arrives as <see langword="null"/> or with
    /// <see cref="HealthServiceEntry.Problem"/> set.
    /// </summary>
    /// <exception cref="ConsulException">The agent failed, answered with an error, or sent an answer that is not a JSON
    /// array, is malformed or is larger than <see cref="ConsulOptions.MaxResponseBytes"/>.</exception>
    public Task<HealthQueryResult> GetHealthServiceAsync(string service, long index, Action<int, HealthServiceEntry?> onEntry, CancellationToken cancellationToken)
    {
        var options = Options;
        var query = new StringBuilder();
        if (options.PassingOnly)
        {
            query.Append("&passing=1");
        }

        foreach (var tag in options.Tags)
        {
            query.Append("&tag=").Append(Uri.EscapeDataString(tag));
        }

        var blocking = index > 0;
        if (blocking)
        {
            query.Append("&index=").Append(index.ToString(CultureInfo.InvariantCulture))
                .Append("&wait=").Append(GoDuration.Format(options.WaitTime));
        }

        AppendScope(query, options, includeDatacenter: true);
        var path = "/v1/health/service/" + Uri.EscapeDataString(service);
        var timeout = blocking ? Timeout.InfiniteTimeSpan : options.RequestTimeout;
        var maxBytes = options.MaxResponseBytes;
        return ExecuteAsync(HttpMethod.Get, path, query, null, timeout, async (response, token) =>
        {
            await EnsureSuccessAsync(response, HttpMethod.Get, path, token).ConfigureAwait(false);
            var nextIndex = ParseIndex(response, path);
            var count = await HealthAnswerReader.ReadAsync(response.Content, maxBytes, $"Consul at {DisplayAddress}: GET {path}", onEntry, token).ConfigureAwait(false);
            return new HealthQueryResult(nextIndex, count);
        }, cancellationToken);
    }

    /// <summary><c>PUT /v1/agent/service/register</c>.</summary>
    public Task RegisterAsync(AgentServiceRegistration registration, CancellationToken cancellationToken)
    {
        const string Path = "/v1/agent/service/register";
        var query = new StringBuilder();
        AppendScope(query, Options, includeDatacenter: false);
        var content = JsonContent.Create(registration, ConsulJsonContext.Default.AgentServiceRegistration);
        return ExecuteAsync(HttpMethod.Put, Path, query, content, Options.RequestTimeout, async (response, token) =>
        {
            await EnsureSuccessAsync(response, HttpMethod.Put, Path, token).ConfigureAwait(false);
            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// <c>PUT /v1/agent/service/deregister/:id</c>. Returns <see langword="false"/> when the agent does not know the
    /// instance (404 "Unknown service ID"): nothing was removed, and nothing is left to remove.
    /// </summary>
    public Task<bool> DeregisterAsync(string serviceId, CancellationToken cancellationToken)
    {
        var path = "/v1/agent/service/deregister/" + Uri.EscapeDataString(serviceId);
        var query = new StringBuilder();
        AppendScope(query, Options, includeDatacenter: false);
        return ExecuteAsync(HttpMethod.Put, path, query, null, Options.RequestTimeout, async (response, token) =>
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return false;
            }

            await EnsureSuccessAsync(response, HttpMethod.Put, path, token).ConfigureAwait(false);
            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// <c>PUT /v1/agent/check/pass/:check_id</c>. Returns <see langword="false"/> when the agent does not know the check
    /// (404 "Unknown check ID" on current agents, 500 "... does not have associated TTL" or "Unknown check" on old ones).
    /// </summary>
    public Task<bool> PassCheckAsync(string checkId, CancellationToken cancellationToken)
    {
        var path = "/v1/agent/check/pass/" + Uri.EscapeDataString(checkId);
        var query = new StringBuilder();
        AppendScope(query, Options, includeDatacenter: false);
        return ExecuteAsync(HttpMethod.Put, path, query, null, Options.RequestTimeout, async (response, token) =>
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return false;
            }

            if (response.StatusCode == HttpStatusCode.InternalServerError)
            {
                var body = await ReadBodyAsync(response, token).ConfigureAwait(false);
                if (body.Contains("Unknown check", StringComparison.OrdinalIgnoreCase)
                    || body.Contains("does not have associated TTL", StringComparison.OrdinalIgnoreCase))
                {
                    return false;
                }

                throw Failure(response.StatusCode, HttpMethod.Put, path, body);
            }

            await EnsureSuccessAsync(response, HttpMethod.Put, path, token).ConfigureAwait(false);
            return true;
        }, cancellationToken);
    }

    /// <summary><c>GET /v1/agent/service/:service_id</c>; <see langword="false"/> when the agent does not know it.</summary>
    public Task<bool> ServiceExistsAsync(string serviceId, CancellationToken cancellationToken)
    {
        var path = "/v1/agent/service/" + Uri.EscapeDataString(serviceId);
        var query = new StringBuilder();
        AppendScope(query, Options, includeDatacenter: false);
        return ExecuteAsync(HttpMethod.Get, path, query, null, Options.RequestTimeout, async (response, token) =>
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return false;
            }

            await EnsureSuccessAsync(response, HttpMethod.Get, path, token).ConfigureAwait(false);
            return true;
        }, cancellationToken);
    }

    internal static Uri BaseUri(ConsulOptions options)
    {
        var address = string.IsNullOrWhiteSpace(options.Address) ? ConsulOptions.DefaultAddress : options.Address;
        return new Uri(address, UriKind.Absolute);
    }

    private static string DisplayOf(Uri uri) => uri.GetComponents(UriComponents.SchemeAndServer, UriFormat.Unescaped);

    private static void AppendScope(StringBuilder query, ConsulOptions options, bool includeDatacenter)
    {
        if (includeDatacenter && !string.IsNullOrEmpty(options.Datacenter))
        {
            query.Append("&dc=").Append(Uri.EscapeDataString(options.Datacenter));
        }

        if (!string.IsNullOrEmpty(options.Namespace))
        {
            query.Append("&ns=").Append(Uri.EscapeDataString(options.Namespace));
        }

        if (!string.IsNullOrEmpty(options.Partition))
        {
            query.Append("&partition=").Append(Uri.EscapeDataString(options.Partition));
        }
    }

    private static string Truncate(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }

        text = text.Trim();
        return text.Length <= MaxBodyInError ? text : string.Concat(text.AsSpan(0, MaxBodyInError), "…");
    }

    /// <summary>
    /// Sends a request and handles its answer under one timeout (none when <paramref name="timeout"/> is infinite), and
    /// turns whatever fails into a <see cref="ConsulException"/> without secrets. Cancellation by
    /// <paramref name="cancellationToken"/> stays an <see cref="OperationCanceledException"/>.
    /// </summary>
    private async Task<T> ExecuteAsync<T>(HttpMethod method, string path, StringBuilder query, HttpContent? content, TimeSpan timeout,
        Func<HttpResponseMessage, CancellationToken, Task<T>> handle, CancellationToken cancellationToken)
    {
        var options = Options;
        var baseUri = BaseUri(options);
        var uri = new UriBuilder(baseUri)
        {
            Path = baseUri.AbsolutePath.TrimEnd('/') + path,
            Query = query.Length > 0 ? query.ToString(1, query.Length - 1) : string.Empty,
        }.Uri;

        using var request = new HttpRequestMessage(method, uri) { Content = content };
        if (!string.IsNullOrEmpty(options.Token))
        {
            request.Headers.TryAddWithoutValidation(TokenHeader, options.Token);
        }

        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            timeoutSource.CancelAfter(timeout);
        }

        var token = timeoutSource.Token;
        var client = _httpClientFactory.CreateClient(HttpClientName);
        var display = DisplayOf(baseUri);
        try
        {
            // Headers only: the body is read by the handler, with a bound on its size.
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false);
            return await handle(response, token).ConfigureAwait(false);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Whatever the cancelled read threw (an OperationCanceledException, or an IOException from the aborted
            // connection), the caller asked for it: report cancellation, not a failure.
            cancellationToken.ThrowIfCancellationRequested();
            throw;
        }
        catch (OperationCanceledException ex) when (timeoutSource.IsCancellationRequested)
        {
            throw Fail($"Consul at {display}: {method} {path} timed out after {timeout.TotalSeconds:0.###} s.", ex);
        }
        catch (ConsulException)
        {
            throw;
        }
        catch (RegistryResponseTooLargeException ex)
        {
            throw Fail(
                $"{ex.Message} Raise {ConsulOptions.SectionName}:{nameof(ConsulOptions.MaxResponseBytes)} if the service really has that many instances; the last good endpoint set stays in force.",
                ex);
        }
        catch (JsonException ex)
        {
            throw Fail($"Consul at {display}: {method} {path} answered with malformed JSON: {ex.Message}", ex);
        }
        catch (HttpRequestException ex)
        {
            var reason = DescribeTlsFailure(ex, options, baseUri) ?? ex.Message;
            throw Fail($"Consul at {display}: {method} {path} failed: {reason}", ex);
        }
        catch (IOException ex)
        {
            throw Fail($"Consul at {display}: {method} {path} failed while reading the answer: {ex.Message}", ex);
        }
        catch (Exception ex)
        {
            // Anything else still leaves here named and redacted: the loop logs what it is given.
            throw Fail($"Consul at {display}: {method} {path} failed: {ex.GetType().Name}: {ex.Message}", ex);
        }
    }

    /// <summary>Builds the error for <paramref name="message"/>, redacted; <paramref name="inner"/> is attached only when its text holds no secret.</summary>
    private ConsulException Fail(string message, Exception? inner, HttpStatusCode? status = null)
    {
        var redactor = Redactor;
        if (inner is not null)
        {
            var text = inner.ToString();
            if (!string.Equals(redactor.Redact(text), text, StringComparison.Ordinal))
            {
                inner = null;
            }
        }

        return new ConsulException(redactor.Redact(message)!, inner) { StatusCode = status };
    }

    private long ParseIndex(HttpResponseMessage response, string path)
    {
        // No header at all is taken as index 0, which the index rules then raise to 1: the agent (or a proxy that
        // dropped the header) is then polled at the minimum interval rather than trusted to block.
        if (!response.Headers.TryGetValues(IndexHeader, out var values))
        {
            return 0;
        }

        var text = values.FirstOrDefault();
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            throw Fail($"Consul at {DisplayAddress}: GET {path} answered with an {IndexHeader} that is not a number ('{Truncate(Redactor.Redact(text))}').", null);
        }

        return index;
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, HttpMethod method, string path, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var body = await ReadBodyAsync(response, cancellationToken).ConfigureAwait(false);
        throw Failure(response.StatusCode, method, path, body);
    }

    private ConsulException Failure(HttpStatusCode status, HttpMethod method, string path, string body)
    {
        var hint = status is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized
            ? " (check the ACL token in Lodestar:Consul:Token or CONSUL_HTTP_TOKEN)"
            : string.Empty;

        // Redact the whole body first, then cut it: a secret cut in half would no longer be recognised.
        var message = $"Consul at {DisplayAddress}: {method} {path} answered {(int)status} {status}{hint}: {Truncate(Redactor.Redact(body))}";
        return Fail(message, null, status);
    }

    private static async Task<string> ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                var buffer = new byte[MaxErrorBodyBytes];
                var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                return Encoding.UTF8.GetString(buffer, 0, read);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            return "(the body could not be read: " + ex.Message + ")";
        }
    }

    /// <summary>Says what went wrong when <paramref name="ex"/> is a failed TLS connection, naming the options to check; else <see langword="null"/>.</summary>
    private static string? DescribeTlsFailure(HttpRequestException ex, ConsulOptions options, Uri baseUri)
    {
        const string Options = nameof(ConsulOptions);
        var server = options.CaCertificatePath is null
            ? $"it must be trusted by the system's certificate authorities and name host '{baseUri.Host}' (set {Options}.{nameof(ConsulOptions.CaCertificatePath)} or CONSUL_CACERT for a private CA)"
            : $"it must be issued by a CA in {Options}.{nameof(ConsulOptions.CaCertificatePath)} and name host '{baseUri.Host}'";
        var hasClientCertificate = options.ClientCertificatePath is not null;
        var client = hasClientCertificate
            ? $"the certificate in {Options}.{nameof(ConsulOptions.ClientCertificatePath)} must be issued by a CA the agent trusts"
            : $"none is configured, and an agent with verify_incoming needs one: set {Options}.{nameof(ConsulOptions.ClientCertificatePath)} and {Options}.{nameof(ConsulOptions.ClientKeyPath)} (or CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY)";
        return TlsFailure.Describe(ex, baseUri, hasClientCertificate, server, client);
    }
}

/// <summary>A health query's next index (<c>X-Consul-Index</c>, 0 when absent) and how many entries it held.</summary>
internal readonly record struct HealthQueryResult(long Index, int Count);
