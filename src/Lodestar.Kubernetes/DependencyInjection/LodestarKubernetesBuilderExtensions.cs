using Lodestar.DependencyInjection;
using Lodestar.Discovery;
using Lodestar.Kubernetes;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.DependencyInjection.Internal;
using Lodestar.Kubernetes.Discovery.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the Kubernetes EndpointSlice source to Lodestar.</summary>
public static class LodestarKubernetesBuilderExtensions
{
    /// <summary>
    /// Adds the <c>kubernetes</c> source: services are followed through their EndpointSlices (list, then watch with
    /// resume and re-list). Options bind from <c>Lodestar:Kubernetes</c> and are validated at startup; a named client
    /// selects the source with <c>LodestarClientOptions.Source = "kubernetes"</c>. Safe to call more than once.
    /// </summary>
    /// <param name="builder">The Lodestar builder.</param>
    /// <param name="configure">Configures the source's options after configuration binding, or <see langword="null"/>.</param>
    /// <returns>The builder.</returns>
    public static ILodestarBuilder AddKubernetes(this ILodestarBuilder builder, Action<KubernetesSourceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<KubernetesSourceOptions>, KubernetesSourceOptionsSetup>());
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KubernetesSourceOptions>, KubernetesSourceOptionsValidator>());
        services.AddOptions<KubernetesSourceOptions>().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<KubernetesClientFactory>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEndpointSourceProvider, KubernetesEndpointSourceProvider>());
        return builder;
    }
}
