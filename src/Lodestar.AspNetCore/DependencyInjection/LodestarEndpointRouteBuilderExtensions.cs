using Lodestar.AspNetCore;
using Lodestar.AspNetCore.DependencyInjection.Internal;
using Lodestar.AspNetCore.Health.Internal;
using Lodestar.AspNetCore.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps Lodestar's health and metrics endpoints.</summary>
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
}
