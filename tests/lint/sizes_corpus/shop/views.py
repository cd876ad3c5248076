from django.http import JsonResponse
from django.views import View
from shop.models import Order


def all_orders(request):
    return JsonResponse({"ids": [o.id for o in Order.objects.all()]})  # load


def paid(request):
    rows = list(Order.objects.filter(status="paid"))  # load
    return JsonResponse({"n": len(rows)})


def count_them(request):
    return JsonResponse({"n": len(Order.objects.exclude(status="x"))})  # load


def totals(request):
    out = []
    for total in Order.objects.values_list("total", flat=True):  # load
        out.append(total)
    return JsonResponse({"t": out})


class OrderList(View):
    def get(self, request):
        qs = Order.objects.order_by("-id")
        return JsonResponse({"o": [o.total for o in qs]})  # load


def ordered(request):
    orders = Order.objects.all()
    data = [{"id": o.id} for o in orders]  # load
    return JsonResponse({"d": data})
