using Lodestar.AspNetCore;
using Lodestar.AspNetCore.Admin;
using Lodestar.AspNetCore.Admin.Internal;
using Lodestar.AspNetCore.DependencyInjection.Internal;
using Lodestar.AspNetCore.Health.Internal;
using Lodestar.AspNetCore.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Lodestar.Diagnostics;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps Lodestar's health, metrics and admin endpoints.</summary>
public static class LodestarEndpointRouteBuilderExtensions
{
    private static readonly string[] s_getAndHead = [HttpMethods.Get, HttpMethods.Head];

    /// <summary>
    /// Maps liveness (<see cref="LodestarServingOptions.LivenessPath"/>, default <c>/healthz</c>: 200 while the process
    /// answers, no dependency called) and readiness (<see cref="LodestarServingOptions.ReadinessPath"/>, default
    /// <c>/readyz</c>: 200 when every readiness check passes within its deadline, 503 otherwise and from the moment the
    /// instance drains; a JSON body with each check for <c>?verbose</c> or <c>Accept: application/json</c>).
    /// Both answer GET and HEAD and are left out of ASP.NET Core's HTTP request metrics.
    /// </summary>
    /// <param name="endpoints">The endpoint route builder.</param>
    /// <returns>A builder to add conventions (authorization, host filters) to both endpoints.</returns>
    /// <exception cref="InvalidOperationException"><c>AddLodestarServing</c> was not called.</exception>
    public static IEndpointConventionBuilder MapLodestarHealth(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.ServiceProvider.GetService<ReadinessProbe>() is null)
        {
            throw new InvalidOperationException("MapLodestarHealth needs services.AddLodestarServing() in the service configuration.");
        }

        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<LodestarServingOptions>>().Value;
        var liveness = endpoints.MapMethods(options.LivenessPath, s_getAndHead, HealthEndpointHandlers.LivenessAsync)
            .WithDisplayName("Lodestar liveness").DisableHttpMetrics();
        var readiness = endpoints.MapMethods(options.ReadinessPath, s_getAndHead, HealthEndpointHandlers.ReadinessAsync)
            .WithDisplayName("Lodestar readiness").DisableHttpMetrics();
        return new CompositeEndpointConventionBuilder([liveness, readiness]);
    }

    /// <summary>
    /// Maps the Prometheus text exposition of the <see cref="PrometheusExporter"/> registered by
    /// <c>AddLodestarServing</c> or <c>AddLodestarPrometheusExporter</c>. The exporter starts collecting here, at
    /// startup. The endpoint is left out of ASP.NET Core's HTTP request metrics.
    /// </summary>
    /// <param name="endpoints">The endpoint route builder.</param>
    /// <param name="pattern">The path; default <c>/metrics</c>.</param>
    /// <returns>A builder to add conventions to the endpoint.</returns>
    /// <exception cref="InvalidOperationException">No exporter is registered.</exception>
    public static IEndpointConventionBuilder MapLodestarMetrics(this IEndpointRouteBuilder endpoints, string pattern = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        var exporter = endpoints.ServiceProvider.GetService<PrometheusExporter>()
            ?? throw new InvalidOperationException("MapLodestarMetrics needs services.AddLodestarServing() or services.AddLodestarPrometheusExporter() in the service configuration.");
        return endpoints.MapMethods(pattern, s_getAndHead, async context =>
        {
            context.Response.ContentType = PrometheusExporter.ContentType;
            context.Response.Headers.CacheControl = "no-store";
            if (!HttpMethods.IsHead(context.Request.Method))
            {
                await exporter.WriteAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
            }
        }).WithDisplayName("Lodestar metrics").DisableHttpMetrics();
    }

    /// <summary>
    /// Maps the read-only admin view of every service this process calls through Lodestar: a live page at
    /// <paramref name="prefix"/> and its JSON at <c>{prefix}/api</c> (<c>?service=name</c> for one service). Only
    /// loopback callers are answered unless <see cref="LodestarAdminOptions.AllowRemoteCallers"/> is set; no configured
    /// secret, credential or URI user-info appears in a response. Both are left out of ASP.NET Core's HTTP request metrics.
    /// </summary>
    /// <remarks>
    /// Options come from the <c>Lodestar:Admin</c> configuration section, then <paramref name="configure"/>. Reading the
    /// view never slows the request path: it reads the same immutable snapshots the pickers read.
    /// </remarks>
    /// <param name="endpoints">The endpoint route builder.</param>
    /// <param name="prefix">The path of the page; default <c>/lodestar</c>.</param>
    /// <param name="configure">Configures the options after configuration is bound, or <see langword="null"/>.</param>
    /// <returns>A builder to add conventions (for example <c>.RequireAuthorization()</c>) to the page and the API.</returns>
    /// <exception cref="InvalidOperationException"><c>AddLodestar</c> was not called.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="LodestarAdminOptions.PageRefreshInterval"/> is outside 250 ms to 1 minute.</exception>
    public static IEndpointConventionBuilder MapLodestarAdmin(this IEndpointRouteBuilder endpoints, string prefix = "/lodestar", Action<LodestarAdminOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        if (!prefix.StartsWith('/'))
        {
            throw new ArgumentException($"The admin prefix '{prefix}' must start with '/'.", nameof(prefix));
        }

        // Resolving the inspector here starts its sampling at startup, so the page has history when first opened.
        var inspector = endpoints.ServiceProvider.GetService<ILodestarInspector>()
            ?? throw new InvalidOperationException("MapLodestarAdmin needs services.AddLodestar() in the service configuration.");
        var options = new LodestarAdminOptions();
        endpoints.ServiceProvider.GetService<IConfiguration>()?.GetSection(LodestarAdminOptions.SectionName).Bind(options);
        configure?.Invoke(options);
        if (options.PageRefreshInterval < TimeSpan.FromMilliseconds(250) || options.PageRefreshInterval > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentOutOfRangeException(nameof(configure), options.PageRefreshInterval,
                $"{LodestarAdminOptions.SectionName}:{nameof(LodestarAdminOptions.PageRefreshInterval)} must be between 250 ms and 1 minute.");
        }

        var admin = new AdminEndpoint(inspector, options, prefix);
        var group = endpoints.MapGroup(prefix);
        group.MapMethods("/", s_getAndHead, admin.PageAsync).WithDisplayName("Lodestar admin page");
        group.MapMethods("/api", s_getAndHead, admin.ApiAsync).WithDisplayName("Lodestar admin API");
        group.DisableHttpMetrics();
        return group;
    }
}
