using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Routing.Internal;

namespace Lodestar.Xds.Listeners.Internal;

/// <summary>
/// Decodes and validates client-side LDS <c>Listener</c> resources as grpc-go's xdsresource unmarshaller does.
/// </summary>
/// <remarks>
/// Rejected: a listener without <c>api_listener</c>, an <c>api_listener</c> that is not an HTTP connection manager, a
/// connection manager with neither <c>rds</c> nor <c>route_config</c> (scoped routes included), an <c>rds</c> whose
/// config source is not <c>ads</c> or <c>self</c> or that names no route configuration, HTTP filters whose last one is
/// not the router, and an inline route configuration that fails its own validation.
/// </remarks>
internal sealed class ListenerDecoder : XdsResourceType
{
    public static readonly ListenerDecoder Instance = new();

    public override string TypeUrl => XdsTypeUrls.Listener;

    public override bool AllResourcesRequiredInSotW => true;

    public override XdsDecodeResult Decode(Any resource)
    {
        Listener message;
        try
        {
            message = Listener.Parser.ParseFrom(resource.Value);
        }
        catch (Exception ex)
        {
            return XdsDecodeResult.Invalid(null, $"a Listener could not be decoded: {ex.Message}");
        }

        try
        {
            return XdsDecodeResult.Valid(message.Name, Map(message));
        }
        catch (XdsResourceException ex)
        {
            return XdsDecodeResult.Invalid(message.Name, $"Listener '{message.Name}': {ex.Message}");
        }
    }

    public static XdsListenerResource Map(Listener message)
    {
        var api = message.ApiListener?.ApiListener_
                  ?? throw new XdsResourceException("api_listener is missing (only client-side listeners are supported)");
        if (api.TypeUrl != XdsTypeUrls.HttpConnectionManager)
        {
            throw new XdsResourceException($"api_listener has type '{api.TypeUrl}', expected an HttpConnectionManager");
        }

        HttpConnectionManager hcm;
        try
        {
            hcm = HttpConnectionManager.Parser.ParseFrom(api.Value);
        }
        catch (Exception ex)
        {
            throw new XdsResourceException($"api_listener could not be decoded: {ex.Message}", ex);
        }

        if (hcm.HttpFilters.Count > 0)
        {
            var last = hcm.HttpFilters[^1];
            if (last.TypedConfig?.TypeUrl != XdsTypeUrls.Router)
            {
                throw new XdsResourceException($"the last HTTP filter '{last.Name}' is not the router");
            }
        }

        TimeSpan? maxStreamDuration = hcm.CommonHttpProtocolOptions?.MaxStreamDuration is { } msd
            ? ClusterDecoder.ReadDuration(msd, "api_listener.common_http_protocol_options.max_stream_duration")
            : null;
        switch (hcm.RouteSpecifierCase)
        {
            case HttpConnectionManager.RouteSpecifierOneofCase.Rds:
                var source = hcm.Rds.ConfigSource;
                if (source is null || source.ConfigSourceSpecifierCase is not (ConfigSource.ConfigSourceSpecifierOneofCase.Ads or ConfigSource.ConfigSourceSpecifierOneofCase.Self))
                {
                    throw new XdsResourceException("api_listener.rds.config_source must be 'ads' or 'self'");
                }

                if (hcm.Rds.RouteConfigName.Length == 0)
                {
                    throw new XdsResourceException("api_listener.rds.route_config_name is empty");
                }

                return new XdsListenerResource(message.Name, hcm.Rds.RouteConfigName, null, maxStreamDuration);
            case HttpConnectionManager.RouteSpecifierOneofCase.RouteConfig:
                try
                {
                    return new XdsListenerResource(message.Name, null, RouteConfigurationDecoder.Map(hcm.RouteConfig), maxStreamDuration);
                }
                catch (XdsResourceException ex)
                {
                    throw new XdsResourceException("api_listener.route_config: " + ex.Message, ex);
                }

            default:
                throw new XdsResourceException("api_listener has neither rds nor route_config");
        }
    }
}
