namespace Lodestar.Xds.Resources;

/// <summary>The type URLs of the resources Lodestar subscribes to, and of the messages nested in them.</summary>
internal static class XdsTypeUrls
{
    public const string Listener = "type.googleapis.com/envoy.config.listener.v3.Listener";
    public const string RouteConfiguration = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    public const string Cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    public const string ClusterLoadAssignment = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    public const string HttpConnectionManager = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    public const string Router = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

    /// <summary>Returns the short name of a resource type (LDS, RDS, CDS, EDS) for messages, or the URL itself.</summary>
    public static string ShortName(string typeUrl) => typeUrl switch
    {
        Listener => "LDS",
        RouteConfiguration => "RDS",
        Cluster => "CDS",
        ClusterLoadAssignment => "EDS",
        _ => typeUrl,
    };
}
