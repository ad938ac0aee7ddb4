using Lodestar.Xds.Routing;

namespace Lodestar.Xds.Listeners;

/// <summary>
/// A validated client-side LDS <c>Listener</c>: its <c>api_listener</c> HTTP connection manager names a route
/// configuration to fetch over RDS, or carries one inline.
/// </summary>
/// <param name="Name">The listener name (the target's authority for gRPC clients).</param>
/// <param name="RouteConfigName">The RDS resource to subscribe to, or <see langword="null"/> when the routes are inline.</param>
/// <param name="InlineRoutes">The inline route configuration, or <see langword="null"/>.</param>
/// <param name="MaxStreamDuration">The connection manager's <c>common_http_protocol_options.max_stream_duration</c>, or <see langword="null"/>.</param>
internal sealed record XdsListenerResource(string Name, string? RouteConfigName, XdsRouteTable? InlineRoutes, TimeSpan? MaxStreamDuration);
