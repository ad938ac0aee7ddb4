using Lodestar;
using Lodestar.Diagnostics.Internal;
using Lodestar.Http;
using Lodestar.Http.Internal;
using Lodestar.Internal;
using Lodestar.Resilience.Internal;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds Lodestar to <see cref="IHttpClientFactory"/> clients.</summary>
public static class LodestarHttpClientBuilderExtensions
{
    /// <summary>
    /// Sends the client's requests for logical URIs (<c>http://orders/...</c>) to endpoints of the service picked per
    /// request, and sets up the primary <see cref="SocketsHttpHandler"/> with defaults for this job: the connect timeout
    /// from <see cref="LodestarClientOptions.ConnectTimeout"/>, a pooled connection lifetime of 2 minutes, a 30 s idle
    /// timeout, HTTP/2 keep-alive pings every 30 s (10 s timeout) and multiple HTTP/2 connections. Unless
    /// <see cref="Lodestar.LodestarOptions.RetireRemovedConnections"/> is off, it also installs a connect callback that lets
    /// pooled connections to endpoints that left their service close as soon as they are idle.
    /// </summary>
    /// <remarks>
    /// Lodestar's handler always sees the logical URI first. When Microsoft.Extensions.ServiceDiscovery's resolving
    /// handler is on the same client (Aspire's service defaults add it to every client through
    /// <c>ConfigureHttpClientDefaults</c>), it is removed from this client and Lodestar's handler takes its place in the
    /// chain, whatever order the two were added in; handlers that do not rewrite the URI, such as the standard
    /// resilience handler, keep their places.
    /// </remarks>
    /// <param name="builder">The client builder.</param>
    /// <param name="configure">
    /// Configures this client's options (policy, source, attempts, retries, outlier detection, health checks, breakers,
    /// hedging, limits), or <see langword="null"/>. They are first bound from the <c>Lodestar:Clients:{name}</c>
    /// configuration section when one exists.
    /// </param>
    /// <returns>The client builder.</returns>
    /// <exception cref="InvalidOperationException">The builder has no client name (the builder of <c>ConfigureHttpClientDefaults</c>).</exception>
    public static IHttpClientBuilder AddLodestar(this IHttpClientBuilder builder, Action<LodestarClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (builder.Name is null)
        {
            // ConfigureHttpClientDefaults hands out a builder without a name: Lodestar's options, routes and handler
            // belong to one client, so that cannot work, and failing here says so at startup.
            throw new InvalidOperationException(
                "AddLodestar() configures one named or typed client, but was called on the builder of ConfigureHttpClientDefaults, which has no client name. "
                + "Call it on each client that should balance through Lodestar instead, for example services.AddHttpClient(\"orders\").AddLodestar(), "
                + "and keep AddServiceDiscovery() in the defaults if you use it: a Lodestar client takes the place of its resolving handler.");
        }

        builder.Services.AddLodestar();
        var options = builder.Services.AddOptions<LodestarClientOptions>(builder.Name);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        var name = builder.Name;
        builder.UseSocketsHttpHandler((handler, sp) =>
        {
            var clientOptions = sp.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>().Get(name);
            handler.ConnectTimeout = clientOptions.ConnectTimeout;
            handler.PooledConnectionLifetime = TimeSpan.FromMinutes(2);
            handler.PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30);
            handler.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
            handler.KeepAlivePingTimeout = TimeSpan.FromSeconds(10);
            handler.KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests;
            handler.EnableMultipleHttp2Connections = true;
            if (sp.GetRequiredService<IOptionsMonitor<LodestarOptions>>().CurrentValue.RetireRemovedConnections && handler.ConnectCallback is null)
            {
                // Tracks each connection by address so connections to endpoints that left close once idle, and applies
                // the services' connection settings; one callback per handler, whose pool it caps.
                handler.ConnectCallback = sp.GetRequiredService<ConnectionRetirer>().CreateConnectCallback();
            }
        });
        builder.AddHttpMessageHandler(sp => new LodestarHandler(
            name,
            sp.GetRequiredService<ResilienceRegistry>(),
            sp.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<RandomSource>(),
            sp.GetRequiredService<LodestarMetrics>(),
            sp.GetRequiredService<ILogger<LodestarHandler>>(),
            sp.GetRequiredService<ConnectionRetirer>(),
            sp.GetServices<IRequestRouter>()));
        // A post-configuration runs after every Configure, so this action is the client's last and sees every handler,
        // including those from ConfigureHttpClientDefaults, which the factory applies before a named client's own.
        builder.Services.AddOptions<HttpClientFactoryOptions>(name)
            .PostConfigure(static options => options.HttpMessageHandlerBuilderActions.Add(HandlerPlacement.Apply));
        return builder;
    }
}
