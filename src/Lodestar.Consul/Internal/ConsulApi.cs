using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Lodestar.Internal;
using Microsoft.Extensions.Options;

namespace Lodestar.Consul.Internal;

/// <summary>
/// The few Consul HTTP API calls Lodestar makes, over one named <see cref="IHttpClientFactory"/> client. Adds the ACL
/// token header, the <c>dc</c>/<c>ns</c>/<c>partition</c> parameters and timeouts, and turns every failure into a
/// <see cref="ConsulException"/> that names the agent and never the token.
/// </summary>
internal sealed class ConsulApi
{
    public const string HttpClientName = "Lodestar.Consul";

    private const int MaxBodyInError = 256;

    private readonly IHttpClientFactory _httpClientFactory;
    private readonly IOptionsMonitor<ConsulOptions> _options;

    public ConsulApi(IHttpClientFactory httpClientFactory, IOptionsMonitor<ConsulOptions> options)
    {
        _httpClientFactory = httpClientFactory;
        _options = options;
    }

    public ConsulOptions Options => _options.CurrentValue;

    /// <summary>Gets the agent address as shown in messages (no user info).</summary>
    public string DisplayAddress => DisplayOf(BaseUri(Options));

    /// <summary>
    /// <c>GET /v1/health/service/:service</c>: a blocking query when <paramref name="index"/> is 1 or more, else an
    /// immediate read.
    /// </summary>
    public async Task<HealthQueryResult> GetHealthServiceAsync(string service, long index, CancellationToken cancellationToken)
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

        var timeout = options.RequestTimeout;
        if (index > 0)
        {
            query.Append("&index=").Append(index.ToString(CultureInfo.InvariantCulture))
                .Append("&wait=").Append(GoDuration.Format(options.WaitTime));

            // Consul adds up to wait/16 of jitter to the wait.
            timeout += options.WaitTime + (options.WaitTime / 16);
        }

        AppendScope(query, options, includeDatacenter: true);
        var path = "/v1/health/service/" + Uri.EscapeDataString(service);
        using var response = await SendAsync(HttpMethod.Get, path, query, null, timeout, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, HttpMethod.Get, path, cancellationToken).ConfigureAwait(false);

        long nextIndex = 0;
        if (response.Headers.TryGetValues("X-Consul-Index", out var values))
        {
            var text = values.FirstOrDefault();
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out nextIndex))
            {
                throw new ConsulException($"Consul at {DisplayAddress}: GET {path} answered with an X-Consul-Index that is not a number ('{Truncate(text)}').");
            }
        }

        List<HealthServiceEntry>? entries;
        try
        {
            entries = await response.Content.ReadFromJsonAsync(ConsulJsonContext.Default.ListHealthServiceEntry, cancellationToken).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            throw new ConsulException($"Consul at {DisplayAddress}: GET {path} answered with malformed JSON: {ex.Message}", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new ConsulException($"Consul at {DisplayAddress}: GET {path} failed while reading the answer: {ex.Message}", ex);
        }

        return new HealthQueryResult(entries ?? [], nextIndex);
    }

    /// <summary><c>PUT /v1/agent/service/register</c>.</summary>
    public async Task RegisterAsync(AgentServiceRegistration registration, CancellationToken cancellationToken)
    {
        const string Path = "/v1/agent/service/register";
        var query = new StringBuilder();
        AppendScope(query, Options, includeDatacenter: false);
        var content = JsonContent.Create(registration, ConsulJsonContext.Default.AgentServiceRegistration);
        using var response = await SendAsync(HttpMethod.Put, Path, query, content, Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, HttpMethod.Put, Path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>PUT /v1/agent/service/deregister/:id</c>. Returns <see langword="false"/> when the agent does not know the
    /// instance (404 "Unknown service ID"): nothing was removed, and nothing is left to remove.
    /// </summary>
    public async Task<bool> DeregisterAsync(string serviceId, CancellationToken cancellationToken)
    {
        var path = "/v1/agent/service/deregister/" + Uri.EscapeDataString(serviceId);
        var query = new StringBuilder();
        AppendScope(query, Options, includeDatacenter: false);
        using var response = await SendAsync(HttpMethod.Put, path, query, null, Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        await EnsureSuccessAsync(response, HttpMethod.Put, path, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// <c>PUT /v1/agent/check/pass/:check_id</c>. Returns <see langword="false"/> when the agent does not know the check
    /// (404 "Unknown check ID" on current agents, 500 "... does not have associated TTL" or "Unknown check" on old ones).
    /// </summary>
    public async Task<bool> PassCheckAsync(string checkId, CancellationToken cancellationToken)
    {
        var path = "/v1/agent/check/pass/" + Uri.EscapeDataString(checkId);
        var query = new StringBuilder();
        AppendScope(query, Options, includeDatacenter: false);
        using var response = await SendAsync(HttpMethod.Put, path, query, null, Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        if (response.StatusCode == HttpStatusCode.InternalServerError)
        {
            var body = await ReadBodyAsync(response, cancellationToken).ConfigureAwait(false);
            if (body.Contains("Unknown check", StringComparison.OrdinalIgnoreCase)
                || body.Contains("does not have associated TTL", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }

            throw Failure(response.StatusCode, HttpMethod.Put, path, body);
        }

        await EnsureSuccessAsync(response, HttpMethod.Put, path, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary><c>GET /v1/agent/service/:service_id</c>; <see langword="false"/> when the agent does not know it.</summary>
    public async Task<bool> ServiceExistsAsync(string serviceId, CancellationToken cancellationToken)
    {
        var path = "/v1/agent/service/" + Uri.EscapeDataString(serviceId);
        var query = new StringBuilder();
        AppendScope(query, Options, includeDatacenter: false);
        using var response = await SendAsync(HttpMethod.Get, path, query, null, Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        await EnsureSuccessAsync(response, HttpMethod.Get, path, cancellationToken).ConfigureAwait(false);
        return true;
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

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, StringBuilder query, HttpContent? content,
        TimeSpan timeout, CancellationToken cancellationToken)
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
            request.Headers.TryAddWithoutValidation("X-Consul-Token", options.Token);
        }

        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        var client = _httpClientFactory.CreateClient(HttpClientName);
        try
        {
            return await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeoutSource.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ConsulException($"Consul at {DisplayOf(baseUri)}: {method} {path} timed out after {timeout.TotalSeconds:0.###} s.", ex);
        }
        catch (HttpRequestException ex)
        {
            var reason = DescribeTlsFailure(ex, options, baseUri) ?? ex.Message;
            throw new ConsulException($"Consul at {DisplayOf(baseUri)}: {method} {path} failed: {Redact(reason)}", ex);
        }
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
        var hint = status == HttpStatusCode.Forbidden ? " (check the ACL token in Lodestar:Consul:Token or CONSUL_HTTP_TOKEN)" : string.Empty;
        var message = $"Consul at {DisplayAddress}: {method} {path} answered {(int)status} {status}{hint}: {Redact(Truncate(body))}";
        return new ConsulException(message) { StatusCode = status };
    }

    private static async Task<string> ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
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

    /// <summary>Removes the token from text that came from elsewhere (an agent may echo what it was sent).</summary>
    private string Redact(string text)
    {
        var token = Options.Token;
        return string.IsNullOrEmpty(token) ? text : text.Replace(token, "[redacted]", StringComparison.Ordinal);
    }
}

/// <summary>A health query's entries and the index to block on next.</summary>
internal readonly record struct HealthQueryResult(List<HealthServiceEntry> Entries, long Index);
