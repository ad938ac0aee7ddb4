using System.Globalization;
using Lodestar.Endpoints;

namespace Lodestar.Health.Internal;

/// <summary>
/// The built-in probe (<see cref="HealthCheckProtocols.Http"/>): a GET on <see cref="HealthCheckOptions.Path"/> over the
/// endpoint's scheme through one pooled handler per stage; a status from <see cref="HealthCheckOptions.MinHealthyStatus"/>
/// to <see cref="HealthCheckOptions.MaxHealthyStatus"/> passes. Redirects are not followed, proxies and cookies not used.
/// </summary>
internal sealed class HttpHealthProbe : HealthProbe
{
    private readonly HealthCheckOptions _options;
    private readonly HttpMessageInvoker _invoker;

    public HttpHealthProbe(HealthCheckOptions options)
    {
        _options = options;
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            ConnectTimeout = options.Timeout,
            PooledConnectionIdleTimeout = options.Interval + options.Interval,
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
        });
    }

    protected override async ValueTask<HealthProbeResult> ProbeCoreAsync(DiscoveredEndpoint endpoint, CancellationToken cancellationToken)
    {
        var uri = new Uri($"{endpoint.Scheme ?? "http"}://{endpoint.Address}{_options.Path}");
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        using var response = await _invoker.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        return status >= _options.MinHealthyStatus && status <= _options.MaxHealthyStatus
            ? HealthProbeResult.Healthy
            : HealthProbeResult.Unhealthy(string.Create(CultureInfo.InvariantCulture, $"status {status}"));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _invoker.Dispose();
        }
    }
}
